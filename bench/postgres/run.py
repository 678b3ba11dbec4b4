#!/usr/bin/env python3
"""The PostgreSQL benchmark: 10,000 single-row queries (a primary-key lookup returning two
columns) from 50 concurrent clients, Weft's db.postgres (bench/postgres/client.weft: 50 tasks,
pool=50) beside Python's psycopg2 with 50 threads (bench/postgres/client_psycopg2.py, Debian's
python3-psycopg2 under /usr/bin/python3). Both query the same throw-away server
(tests/support/pg_server.py: initdb in a temp folder, a free loopback port, fsync off), started
once for the whole run and always stopped.

    python3 bench/postgres/run.py [--build-dir build] [--repeat 5] [--queries 10000] [--tasks 50]

Prints, per client, the best-of-N queries/s of the timed part (connections are opened before
the clock starts) and the CPU time (user+sys) of the whole client process, then the Weft/Python
throughput ratio (higher is better; the issue's target is >= 1.0). The clients run alternately
so both see the same load. Standard library only (psycopg2 is the peer's).
"""
import argparse
import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import pg_server  # noqa: E402

PEER_PYTHON = "/usr/bin/python3"  # Debian's, where python3-psycopg2 is installed


def run_once(cmd):
    """(checksum, seconds of the timed part, CPU seconds of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"postgres benchmark: {' '.join(cmd[:3])}... failed ({r.returncode}):\n{r.stderr[-2000:]}")
    checksum, secs = r.stdout.split()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return int(checksum), float(secs), cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--tasks", type=int, default=50)
    a = ap.parse_args()
    weft = os.path.join(ROOT, a.build_dir, "weft")
    if not os.path.exists(weft):
        sys.exit(f"postgres benchmark: {weft} is missing (build it first)")
    if not pg_server.available():
        sys.exit("postgres benchmark: PostgreSQL is not installed (bash scripts/setup.sh)")
    if subprocess.run([PEER_PYTHON, "-c", "import psycopg2"], capture_output=True).returncode != 0:
        sys.exit("postgres benchmark: psycopg2 is missing (apt-get install python3-psycopg2)")
    pg_server.exit_on_signals()
    with pg_server.PgServer() as pg:
        setup = ("CREATE TABLE bench_kv (id int PRIMARY KEY, v text);"
                 "INSERT INTO bench_kv SELECT i, 'value ' || i FROM generate_series(1, 1000) i;"
                 "ANALYZE bench_kv;")
        subprocess.run([PEER_PYTHON, "-c", "import psycopg2,sys; c=psycopg2.connect(sys.argv[1]); "
                        "c.autocommit=True; c.cursor().execute(sys.argv[2])", pg.dsn, setup], check=True)
        args = [pg.dsn, str(a.queries), str(a.tasks)]
        clients = {
            "weft db.postgres": [weft, "--allow-net=127.0.0.1", "run",
                                 os.path.join(ROOT, "bench", "postgres", "client.weft")] + args,
            "python psycopg2": [PEER_PYTHON, os.path.join(ROOT, "bench", "postgres", "client_psycopg2.py")] + args,
        }
        best = {}
        sums = {}
        for _ in range(a.repeat):
            for name, cmd in clients.items():
                checksum, secs, cpu = run_once(cmd)
                sums.setdefault(name, checksum)
                if checksum != sums[name]:
                    sys.exit(f"postgres benchmark: {name} gave checksum {checksum}, then {sums[name]}")
                if name not in best or secs < best[name][0]:
                    best[name] = (secs, cpu)
        if len(set(sums.values())) != 1:
            sys.exit(f"postgres benchmark: the clients disagree: {sums}")
    n = (a.queries // a.tasks) * a.tasks
    print(f"{n} queries from {a.tasks} concurrent clients, best of {a.repeat} "
          f"({os.cpu_count()} CPUs; server on the same machine)")
    print(f"{'client':<20} {'seconds':>8} {'queries/s':>10} {'CPU s':>7}")
    for name, (secs, cpu) in best.items():
        print(f"{name:<20} {secs:>8.3f} {n / secs:>10.0f} {cpu:>7.2f}")
    w = n / best["weft db.postgres"][0]
    p = n / best["python psycopg2"][0]
    print(f"Weft/Python throughput: {w / p:.2f}x (target >= 1.0)")


if __name__ == "__main__":
    main()
