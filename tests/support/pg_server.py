#!/usr/bin/env python3
"""A throw-away PostgreSQL server for the tests of `db.postgres` (and its benchmark).

    with PgServer() as pg:          # initdb into a fresh temp folder, start, wait until ready
        run_tests(pg.dsn)           # "host=127.0.0.1 port=N user=weft dbname=postgres"
                                    # stopped and the folder removed on leaving, always

The server listens on a free loopback port (and on a Unix socket in the temp folder, see
`socket_dir`), trusts local connections (user `weft`, superuser), and runs with fsync off: its
data is disposable. PostgreSQL refuses to run as root, so when the tests run as root the folder
is handed to the `postgres` system user (created by Debian's package) and every server command
runs through `runuser -u postgres --`.

Stopping is guaranteed: the context manager's exit, an atexit hook and SIGTERM/SIGINT/SIGHUP
handlers (which turn the signal into SystemExit, so `finally` blocks run) all stop it; a
fast shutdown (SIGINT to the postmaster) is given 15 s before SIGKILL of its process group.

Run directly (`python3 tests/support/pg_server.py`) it starts a server, prints the DSN and
waits until killed: handy to try db.postgres by hand.

Standard library only. `available()` says whether PostgreSQL's server programs are installed
(Debian: `apt-get install postgresql`).
"""

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 60  # seconds for initdb + start-up on a slow, shared machine
STOP_TIMEOUT = 15


def bin_dir():
    """The newest /usr/lib/postgresql/<version>/bin holding `postgres` and `initdb`, or None."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        if os.path.exists(os.path.join(d, "postgres")) and os.path.exists(os.path.join(d, "initdb")):
            try:
                found.append((int(d.split("/")[-2].split(".")[0]), d))
            except ValueError:
                pass
    if found:
        return max(found)[1]
    for name in ("postgres", "initdb"):
        if not shutil.which(name):
            return None
    return os.path.dirname(shutil.which("postgres"))


def available():
    return bin_dir() is not None and (os.geteuid() != 0 or _postgres_user() is not None)


def _postgres_user():
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, user="weft"):
        self.user = user
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.dir = None
        self.proc = None
        self.port = None
        self.log = None
        self._stopped = True

    # -- commands run as the server's owner --------------------------------------------------
    def _as_owner(self, cmd):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + cmd
        return cmd

    def _run(self, cmd, timeout):
        r = subprocess.run(self._as_owner(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}")
        return r.stdout

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_dir(self):
        return self.dir

    @property
    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    @property
    def socket_dsn(self):
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname=postgres"

    # -- life cycle --------------------------------------------------------------------------
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="weft-pg-")
        self._stopped = False
        atexit.register(self.stop)
        if os.geteuid() == 0:
            pw = _postgres_user()
            if pw is None:
                raise RuntimeError("running as root needs the 'postgres' system user")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)  # the tests (maybe another user) reach the socket in it
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", self.user, "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], START_TIMEOUT)
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "wb") if os.geteuid() != 0 else \
            open(tempfile.mktemp(prefix="weft-pg-log-"), "wb")
        cmd = [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
               "-h", "127.0.0.1", "-k", self.socket_dir, "-F",
               "-c", "max_connections=200", "-c", "shared_buffers=32MB",
               "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        self.proc = subprocess.Popen(self._as_owner(cmd), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        isready = os.path.join(self.bin, "pg_isready")
        if not os.path.exists(isready):
            isready = shutil.which("pg_isready")
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited at start-up:\n" + self.server_log())
            r = subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
            if r.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT} s:\n"
                                   + self.server_log())
            time.sleep(0.2)

    def server_log(self):
        try:
            with open(self.log.name, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except (OSError, AttributeError):
            return ""

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stops the server (fast shutdown, then SIGKILL) and removes its folder. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.proc is not None and self.proc.poll() is None:
                pid = self._postmaster_pid()
                try:
                    os.kill(pid or self.proc.pid, signal.SIGINT)  # fast shutdown
                except (ProcessLookupError, TypeError):
                    pass
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            if self.log is not None:
                self.log.close()
                if not self.log.name.startswith(self.dir or "\0"):
                    try:
                        os.unlink(self.log.name)
                    except OSError:
                        pass
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False


def exit_on_signals():
    """Turns SIGTERM/SIGINT/SIGHUP into SystemExit, so `with PgServer()` blocks stop the server."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


if __name__ == "__main__":
    exit_on_signals()
    with PgServer() as pg:
        print(pg.dsn, flush=True)
        while True:
            time.sleep(3600)
