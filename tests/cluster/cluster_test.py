#!/usr/bin/env python3
"""Cluster mode end to end (docs/cluster.md): a real nats-server with JetStream and real
`weft worker` processes on loopback.

Starts one nats-server (-js, file storage in a temporary folder, a free port) for the whole run
(a second one for the "server stopped mid-run" case), and for each test a fresh cluster name
(so tests never see each other's streams) with its own 1-3 workers. Every process is started
in its own process group and always killed at the end (try/finally); every wait is bounded.

Usage: cluster_test.py --weft build/weft [-k NAME]
Exit status: 0 all passed, 1 a failure, 77 (ctest's SKIP_RETURN_CODE) when nats-server is not
installed (apt-get install nats-server).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child in its own process group whose stderr (and stdout) lines are collected."""

    def __init__(self, args, cwd=None, env=None):
        self.args = args
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=cwd, env=env, start_new_session=True)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.out), daemon=True),
                        threading.Thread(target=self._read, args=(self.p.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line.rstrip("\n"))

    def lines(self, which="err"):
        with self.lock:
            return list(self.err if which == "err" else self.out)

    def wait_line(self, pattern, timeout, which="err"):
        """Waits (bounded) for a line matching `pattern`; returns it or None."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.lines(which):
                if rx.search(line):
                    return line
            if self.p.poll() is not None and not any(rx.search(l) for l in self.lines(which)):
                time.sleep(0.1)  # let the readers drain
                for line in self.lines(which):
                    if rx.search(line):
                        return line
                return None
            time.sleep(0.05)
        return None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        if self.p.poll() is None:
            self.signal(signal.SIGKILL)
        self.wait(5)
        for t in self.threads:
            t.join(timeout=2)


class Server:
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="js")
        self.proc = Proc(["nats-server", "-js", "-sd", self.dir, "-a", "127.0.0.1", "-p", str(self.port)])
        if not self.proc.wait_line(r"Server is ready", 15):
            raise RuntimeError("nats-server did not start:\n" + "\n".join(self.proc.lines()))
        self.url = "nats://127.0.0.1:%d" % self.port


class Env:
    """One test's cluster: a name, its workers, its temporary folder, and every process to stop."""

    def __init__(self, weft, server, tmp, name):
        self.weft, self.server, self.tmp = weft, server, tmp
        self.cluster = "t%s%d" % (re.sub(r"\W", "", name)[:20], os.getpid())
        self.procs = []
        self.workers = {}

    def worker(self, name, *flags, ack_wait="2s", slots=1, env=None):
        args = [self.weft, "worker", "--cluster", self.server.url, "--cluster-name", self.cluster, "--name", name,
                "--workers", str(slots), "--ack-wait", ack_wait, "--verbose", *flags]
        p = Proc(args, cwd=self.tmp, env=dict(os.environ, **env) if env else None)
        self.procs.append(p)
        self.workers[name] = p
        if not p.wait_line(r"serving pool", 15):
            raise AssertionError("worker %s did not start: %s" % (name, "\n".join(p.lines())))
        return p

    def program(self, source, *flags, name="prog.weft"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(source)
        return path

    def start(self, source, *flags):
        path = self.program(source)
        p = Proc([self.weft, *flags, "run", "--cluster", self.server.url, "--cluster-name", self.cluster, path],
                 cwd=self.tmp)
        self.procs.append(p)
        return p

    def run(self, source, *flags, timeout=60):
        p = self.start(source, *flags)
        rc = p.wait(timeout)
        if rc is None:
            p.kill()
            raise AssertionError("the program did not finish within %ss:\n%s" % (timeout, "\n".join(p.lines())))
        for t in p.threads:
            t.join(timeout=5)
        return rc, "\n".join(p.lines("out")), "\n".join(p.lines("err"))

    def close(self):
        for p in self.procs:
            p.kill()


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---------------------------------------------------------------------------
# The tests. Each gets a fresh Env (cluster name) and starts the workers it needs.

def test_results_in_order_equal_local(env):
    env.worker("w1")
    env.worker("w2")
    src = """
SCALE = 3
OFFSETS = {"a": 10, "b": 20}
def helper(x):
    return x * SCALE
def make(k):
    base = OFFSETS[k]
    def f(x):
        return {"x": x, "v": helper(x) + base, "tags": [str(x), (x, x % 2 == 0)]}
    return f
f = make("b")
xs = list(range(40))
local = parallel_map(f, xs)
remote = parallel_map(f, xs, cluster=True)
print(remote == local, len(remote), remote[3])
print(parallel_map(len, ["ab", "cde"], cluster=True))
evens = parallel_filter(lambda x: x % 2 == 0, range(10), cluster=True)
print(evens)
"""
    rc, out, err = env.run(src)
    expect(rc == 0, "rc %s: %s" % (rc, err))
    lines = out.splitlines()
    expect(lines[0] == "True 40 {'x': 3, 'v': 29, 'tags': ['3', (3, False)]}", out)
    expect(lines[1] == "[2, 3]", out)
    expect(lines[2] == "[0, 2, 4, 6, 8]", out)
    ran = [l for w in env.workers.values() for l in w.lines() if "running task" in l]
    expect(len(ran) >= 40 + 2 + 10, "tasks ran remotely: %d" % len(ran))


def test_struct_values_and_types_cross(env):
    """Struct values go to the workers as arguments and captures, their type's methods run
    there, the function builds new ones with the type it reads as a global, and the results
    are instances of the program's own types (isinstance, equality, methods)."""
    env.worker("w1")
    env.worker("w2")
    src = """
struct Point:
    x: int
    y: int = 0
    def norm1(self):
        return abs(self.x) + abs(self.y)

struct Tagged(Point):
    tag: str = "t"

ORIGIN = Point(0, 0)

def shift(p):
    q = Point(p.x + 1, p.y * 2)
    return (q, q.norm1(), p == ORIGIN, Tagged(x=p.x, tag="k" + str(p.x)))

pts = [Point(i, i - 2) for i in range(6)] + [ORIGIN]
local = parallel_map(shift, pts)
remote = parallel_map(shift, pts, cluster=True)
print(remote == local)
r2 = remote[2]
print(r2[0], r2[1], isinstance(r2[0], Point), isinstance(r2[3], Point), r2[3].tag, r2[3].norm1())
print(remote[6][2], type(remote[0][0]) == Point)
"""
    rc, out, err = env.run(src)
    expect(rc == 0, "rc %s: %s" % (rc, err))
    lines = out.splitlines()
    expect(lines[0] == "True", out)
    expect(lines[1] == "Point(x=3, y=0) 3 True True k2 2", out)
    expect(lines[2] == "True True", out)


def test_actor_type_does_not_cross(env):
    env.worker("w1")
    src = """
actor Counter:
    n: int = 0
def make(t):
    def f(x):
        return t
    return f
try:
    parallel_map(make(Counter), [1], cluster=True)
except ClusterError as e:
    print("ClusterError", "actor type Counter" in str(e))
"""
    rc, out, err = env.run(src)
    expect(rc == 0 and out.strip() == "ClusterError True", "rc %s: %s %s" % (rc, out, err))


def test_channel_three_levels_deep_is_refused_before_sending(env):
    env.worker("w1")
    src = """
ch = channel(1)
def make(cfg):
    def score(x):
        return len(cfg) + x
    return score
score = make({"a": [{"b": ch}]})
try:
    parallel_map(score, [1, 2], cluster=True)
except ClusterError as e:
    print("ClusterError:", e)
"""
    rc, out, err = env.run(src)
    expect(rc == 0, err)
    expect("cannot send a channel to a cluster worker" in out, out)
    expect("'score' captures 'cfg' -> cfg['a'][0]['b'] (a channel)" in out, out)
    time.sleep(0.5)
    expect(not any("running task" in l for l in env.workers["w1"].lines()), "a task was sent")


def test_capabilities_are_intersected(env):
    env.worker("w1")  # started without --allow-read
    secret = os.path.join(env.tmp, "secret.txt")
    with open(secret, "w") as f:
        f.write("hidden")
    src = """
import fs
def read(p):
    return fs.read_file(p)
print("local:", read(%r))
try:
    parallel_map(read, [%r], cluster=True)
except PermissionDenied as e:
    print("remote: PermissionDenied", e)
""" % (secret, secret)
    rc, out, err = env.run(src, "--allow-read")
    expect(rc == 0, err)
    expect("local: hidden" in out, out)
    expect("remote: PermissionDenied" in out and "requires --allow-read" in out, out)


def test_worker_granted_but_caller_not(env):
    env.worker("w1", "--allow-read")
    src = """
import fs
def read(p):
    return fs.read_file(p)
try:
    parallel_map(read, ["/etc/hostname"], cluster=True)
except PermissionDenied as e:
    print("remote: PermissionDenied")
"""
    rc, out, err = env.run(src)  # the caller holds no --allow-read
    expect(rc == 0, err)
    expect("remote: PermissionDenied" in out, out)


def test_kill9_mid_task_redelivered_result_once(env):
    w1 = env.worker("w1")
    w2 = env.worker("w2")
    src = """
import time
def slow(x):
    time.sleep(1.0)
    return x * x
r = parallel_map(slow, range(4), cluster=True)
print(r)
"""
    p = env.start(src, "--stats")
    line = None
    deadline = time.monotonic() + 15
    victim = None
    while time.monotonic() < deadline and victim is None:
        for name, w in (("w1", w1), ("w2", w2)):
            if any("running task" in l for l in w.lines()):
                victim = name
                break
        time.sleep(0.05)
    expect(victim is not None, "no worker started a task")
    env.workers[victim].signal(signal.SIGKILL)
    rc = p.wait(40)
    expect(rc == 0, "rc %s: %s" % (rc, "\n".join(p.lines())))
    for t in p.threads:
        t.join(timeout=5)
    out = "\n".join(p.lines("out"))
    expect(out.strip() == "[0, 1, 4, 9]", out)
    survivor = env.workers["w2" if victim == "w1" else "w1"]
    expect(any("(delivery 2)" in l for l in survivor.lines()), "no redelivery seen: %s" % survivor.lines())
    # The victim held one task, or two with its prefetch (--prefetch defaults to --workers).
    expect(any(re.search(r"cluster: 4 remote tasks .*, [12] redelivered", l) for l in p.lines()), "--stats: %s" % p.lines())


def test_poison_task_ends_as_worker_lost(env):
    env.worker("p1")
    src = """
import time
def poison(x):
    time.sleep(1)  # long enough for the harness to kill the worker running it
    return x
try:
    parallel_map(poison, [7], cluster=True, retries=1)
except WorkerLost as e:
    print("WorkerLost:", e)
"""
    p = env.start(src)
    # Every worker that runs the task dies (kill -9 when it starts it); a new one takes over.
    killed, n = 0, 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and p.p.poll() is None and killed < 2:
        name = "p%d" % n
        if any("running task" in l for l in env.workers[name].lines()):
            env.workers[name].signal(signal.SIGKILL)
            killed += 1
            n += 1
            env.worker("p%d" % n)
        time.sleep(0.02)
    rc = p.wait(30)
    expect(rc == 0, "\n".join(p.lines()))
    for t in p.threads:
        t.join(timeout=5)
    out = "\n".join(p.lines("out"))
    expect(killed == 2, "killed %d" % killed)
    expect("WorkerLost: the worker running this task was lost 2 times (retries=1)" in out, out)


def test_no_worker_yet_tasks_wait(env):
    src = """
print(parallel_map(lambda x: x + 1, [1, 2, 3], cluster=True))
"""
    p = env.start(src)
    time.sleep(1.5)
    expect(p.p.poll() is None, "the program did not wait for a worker")
    env.worker("late")
    rc = p.wait(20)
    expect(rc == 0, "\n".join(p.lines()))
    for t in p.threads:
        t.join(timeout=5)
    expect("\n".join(p.lines("out")).strip() == "[2, 3, 4]", p.lines("out"))


def test_cancellation_stops_remote_tasks(env):
    w1 = env.worker("w1", slots=2)
    src = """
import time
def slow(x):
    time.sleep(20)
    return x
t0 = time.monotonic()
with move_on_after(1.5):
    parallel_map(slow, range(6), cluster=True)
print("cancelled at once", time.monotonic() - t0 < 4)
t1 = time.monotonic()
print(parallel_map(lambda x: x * 10, [1, 2], cluster=True), time.monotonic() - t1 < 10)
"""
    rc, out, err = env.run(src, timeout=40)
    expect(rc == 0, err)
    # The second call found free slots at once: the running 20 s tasks were stopped.
    expect(out.splitlines() == ["cancelled at once True", "[10, 20] True"], out)
    lines = w1.lines()
    expect(any("cancelled by its driver" in l for l in lines), lines)
    started = [l for l in lines if "] running task" in l and "-0." in l]
    cancelled = [l for l in lines if "(cancelled)" in l]
    dropped = [l for l in lines if "dropped task" in l]
    # The tasks the worker held (2 threads + 2 prefetched) are cancelled; the queued ones are
    # dropped when fetched, never run.
    expect(len(cancelled) == len(started) and len(started) + len(dropped) == 6 and dropped, lines)


def test_application_error_not_retried(env):
    env.worker("w1")
    src = """
def bad(x):
    if x == 2:
        raise ValueError("bad item " + str(x))
    return x
try:
    parallel_map(bad, [1, 2, 3], cluster=True)
except ValueError as e:
    print("ValueError:", e)
print(parallel_map(bad, [1, 2, 3], cluster=True, errors="collect"))
r = cluster.submit(bad, 5)
print(r)
"""
    rc, out, err = env.run("import cluster\n" + src)
    expect(rc == 0, err)
    lines = out.splitlines()
    expect(lines[0] == "ValueError: bad item 2", out)
    expect(lines[1].startswith("[1, ValueError(") and lines[1].endswith(", 3]"), out)
    expect(lines[2] == "5", out)
    expect(not any("(delivery 2)" in l for l in env.workers["w1"].lines()), "an application error was retried")


def test_status_and_sigterm(env):
    w1 = env.worker("w1", slots=2)
    st = subprocess.run([env.weft, "cluster", "status", "--cluster", env.server.url, "--cluster-name", env.cluster],
                        capture_output=True, text=True, timeout=20)
    expect(st.returncode == 0, st.stderr)
    expect(re.search(r"workers: 1\n\s+w1\s+host=\S+ pid=\d+ pool=default slots=2 busy=0", st.stdout), st.stdout)
    src = """
import time
def slow(x):
    time.sleep(1.5)
    return x + 100
print(parallel_map(slow, [1], cluster=True))
"""
    p = env.start(src)
    expect(w1.wait_line("running task", 15), w1.lines())
    w1.signal(signal.SIGTERM)  # stop pulling, finish the running task, exit 0
    expect(w1.wait(20) == 0, "worker exit status %s: %s" % (w1.p.returncode, w1.lines()))
    rc = p.wait(20)
    expect(rc == 0, p.lines())
    for t in p.threads:
        t.join(timeout=5)
    expect("\n".join(p.lines("out")).strip() == "[101]", p.lines("out"))


def test_server_stopped_mid_run(env, tmp, weft):
    server = Server(tmp)
    try:
        env.server = server
        w = env.worker("w1")
        src = """
import time
def slow(x):
    time.sleep(10)
    return x
try:
    parallel_map(slow, [1, 2], cluster=True)
except ClusterError as e:
    print("ClusterError:", e)
"""
        p = env.start(src)
        expect(w.wait_line("running task", 15), w.lines())
        t0 = time.monotonic()
        server.proc.kill()
        rc = p.wait(30)
        expect(rc == 0, "rc %s: %s" % (rc, p.lines()))
        expect(time.monotonic() - t0 < 15, "took %.1fs" % (time.monotonic() - t0))
        for t in p.threads:
            t.join(timeout=5)
        out = "\n".join(p.lines("out"))
        expect("ClusterError:" in out and "lost the connection to the NATS server" in out, out)
    finally:
        server.proc.kill()


def test_example_scores(env):
    env.worker("w1")
    env.worker("w2")
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "cluster", "scores.weft")
    p = Proc([env.weft, "run", "--cluster", env.server.url, "--cluster-name", env.cluster, example], cwd=env.tmp)
    env.procs.append(p)
    rc = p.wait(60)
    for t in p.threads:
        t.join(timeout=5)
    out = p.lines("out")
    expect(rc == 0, p.lines())
    expect(out == ["same as local: True", "[{'words': 7, 'longest': 5}, {'words': 3, 'longest': 6}]",
                   "{'words': 4, 'longest': 11}"], out)


def test_stats_and_trace_out_show_remote_tasks(env):
    env.worker("w1")
    env.worker("w2")
    trace = os.path.join(env.tmp, "trace.json")
    rc, out, err = env.run("print(parallel_map(lambda x: x * 2, range(6), cluster=True))\n",
                           "--stats", "--trace-out", trace)
    expect(rc == 0, err)
    expect(out.strip() == "[0, 2, 4, 6, 8, 10]", out)
    expect(re.search(r"cluster: 6 remote tasks \(w1 \d+, w2 \d+\)|cluster: 6 remote tasks \(w[12] 6\)", err), err)
    import json
    with open(trace) as f:
        events = json.load(f)["traceEvents"]
    remote = [e for e in events if e.get("pid") == 2 and e["ph"] == "X"]
    expect(len(remote) == 6, remote)
    expect(all(set(e["args"]) >= {"queue_ms", "run_ms", "deliveries"} for e in remote), remote[0])
    tracks = {e["args"]["name"] for e in events if e.get("pid") == 2 and e["ph"] == "M" and "tid" in e}
    expect(tracks and tracks <= {"worker w1", "worker w2"}, tracks)


def test_remote_actor_ask_and_noconnection(env):
    owner_src = """
import time
actor Counter:
    count: int = 0
    def increment(self, n=1):
        self.count += n
        return self.count
    def fail(self):
        raise ValueError("no")
c = Counter.spawn(name="counter", cluster=True)
try:
    Counter.spawn(name="counter", cluster=True)
except ValueError as e:
    print("second spawn:", e)
print("ready", flush=True)
time.sleep(60)
"""
    user_src = """
import time
print(whereis("nobody"))
r = whereis("counter")
print(r)
print(r.increment(5), r.ask("increment", 2), r.increment())
try:
    print(r.fail())
except ValueError as e:
    print("remote error:", e)
m = monitor(r)
print("monitoring", flush=True)
msg = m.recv(timeout=20)
print(msg["reason"], msg["down"] == r)
"""
    owner = env.start(owner_src)
    expect(owner.wait_line("^ready$", 20, which="out"), owner.lines() + owner.lines("out"))
    user = Proc([env.weft, "run", "--cluster", env.server.url, "--cluster-name", env.cluster,
                 env.program(user_src, name="user.weft")], cwd=env.tmp)
    env.procs.append(user)
    expect(user.wait_line("^monitoring$", 20, which="out"), user.lines() + user.lines("out"))
    owner.signal(signal.SIGKILL)  # the node disappears: its heartbeats stop
    t0 = time.monotonic()
    rc = user.wait(30)
    expect(rc == 0, user.lines())
    for t in user.threads:
        t.join(timeout=5)
    out = user.lines("out")
    expect(out == ["None", "<ActorRef 'counter' (remote)>", "5 7 8", "remote error: no", "monitoring",
                   "noconnection True"], out)
    expect(time.monotonic() - t0 < 10, "noconnection after %.1fs" % (time.monotonic() - t0))
    expect(any("second spawn: an actor named 'counter' is already running" in l for l in owner.lines("out")),
           owner.lines("out"))


def test_pools(env):
    env.worker("w1")
    env.worker("g1", "--pool", "gpu")
    src = """
import cluster
def where(x):
    return cluster.worker_id()
print(parallel_map(where, [1, 2, 3], cluster=True, pool="gpu"))
print(parallel_map(where, [1, 2], cluster=True))
print(cluster.submit(where, 0, pool="gpu"), cluster.worker_id())
"""
    rc, out, err = env.run(src)
    expect(rc == 0, err)
    expect(out.splitlines() == ["['g1', 'g1', 'g1']", "['w1', 'w1']", "g1 None"], out)


def test_worker_of_another_version_refuses(env):
    env.worker("old", env={"WEFT_CLUSTER_TEST_VERSION": "0.0.1"})
    src = """
try:
    parallel_map(lambda x: x, [1], cluster=True)
except ClusterError as e:
    print("ClusterError:", e)
"""
    rc, out, err = env.run(src)
    expect(rc == 0, err)
    expect("this task was sent by weft 0.1.0" in out and "worker 'old' runs weft 0.0.1" in out, out)


TESTS = [test_example_scores, test_worker_of_another_version_refuses, test_pools, test_remote_actor_ask_and_noconnection, test_stats_and_trace_out_show_remote_tasks, test_results_in_order_equal_local, test_struct_values_and_types_cross, test_actor_type_does_not_cross, test_channel_three_levels_deep_is_refused_before_sending,
         test_capabilities_are_intersected, test_worker_granted_but_caller_not,
         test_kill9_mid_task_redelivered_result_once, test_poison_task_ends_as_worker_lost,
         test_no_worker_yet_tasks_wait, test_cancellation_stops_remote_tasks, test_application_error_not_retried,
         test_status_and_sigterm, test_server_stopped_mid_run]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    if not shutil.which("nats-server"):
        print("cluster tests skipped: nats-server is not installed (apt-get install nats-server)")
        return SKIP
    weft = os.path.abspath(args.weft)
    tmp = tempfile.mkdtemp(prefix="weft_cluster_")
    failures = 0
    server = None
    try:
        server = Server(tmp)
        for t in TESTS:
            if args.k not in t.__name__:
                continue
            folder = tempfile.mkdtemp(dir=tmp, prefix=t.__name__[:20])
            env = Env(weft, server, folder, t.__name__[5:])
            t0 = time.monotonic()
            try:
                if t.__code__.co_argcount == 3:
                    t(env, tmp, weft)
                else:
                    t(env)
                print("ok   %-60s %.1fs" % (t.__name__, time.monotonic() - t0), flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure, go on
                failures += 1
                print("FAIL %-60s %.1fs\n  %s" % (t.__name__, time.monotonic() - t0, e), flush=True)
                for name, w in env.workers.items():
                    print("  --- worker %s:\n    %s" % (name, "\n    ".join(w.lines()[-15:])))
            finally:
                env.close()
    finally:
        if server:
            server.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %d failed" % ("FAILED" if failures else "passed", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
