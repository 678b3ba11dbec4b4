#!/usr/bin/env python3
"""Runs the language tests that need PostgreSQL (tests/lang/postgres) against a throw-away server.

    python3 tests/support/run_pg_tests.py --weft build/weft [run_lang_tests.py options...]

Starts a server with pg_server.PgServer (a temp folder, a free loopback port; stopped at the
end whatever happens), exports its DSN as WEFT_TEST_PG_DSN (the tests read it with
env("WEFT_TEST_PG_DSN") under --allow-env=WEFT_TEST_PG_DSN) and WEFT_TEST_PG_SOCKET (the
server's Unix socket folder), and runs tests/run_lang_tests.py on tests/lang/postgres with the
other options. Exit status: the runner's, or 77 (ctest's SKIP_RETURN_CODE) when PostgreSQL is
not installed. Run from the repository root (the tests name files relative to it).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pg_server  # noqa: E402

SKIP = 77


def main():
    args = sys.argv[1:]
    if not pg_server.available():
        print("postgres tests skipped: PostgreSQL is not installed (apt-get install postgresql)")
        return SKIP
    pg_server.exit_on_signals()
    tests_dir = os.path.join(os.path.dirname(HERE), "lang", "postgres")
    runner = os.path.join(os.path.dirname(HERE), "run_lang_tests.py")
    with pg_server.PgServer() as pg:
        env = dict(os.environ, WEFT_TEST_PG_DSN=pg.dsn, WEFT_TEST_PG_SOCKET=pg.socket_dir)
        proc = subprocess.Popen([sys.executable, runner] + args + [tests_dir], env=env)
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
