#!/usr/bin/env python3
"""The slow-server HTTP benchmark: N GETs all in flight at once (default 50) to a local server
that answers each after DELAY ms (default 300; bench/http/slow_server.py, Python's
ThreadingHTTPServer), Weft's `http` module through
`parallel_map(fetch, range(N), workers=N)` (bench/http/client.weft in `map` mode, default two
workers and `--workers 1`) against Python's ThreadPoolExecutor(N) with urllib
(bench/peers/http_client.py).

    python3 bench/http/slow.py [--build-dir build] [--repeat 10] [--requests 50]
                               [--delay-ms 300] [--backlog 1024]

The ideal is one DELAY plus connection set-up; what this measures is that every requester is
woken as soon as its response is in (a lost wake-up shows as runs of 1 s and more: the client's
idle check, or another request's event). Unlike bench/http/run.py, whose server answers at
once, a request here spends its time parked in the leader/followers wait on curl's sockets.
Prints best, median and worst wall time per client over --repeat runs (the clients alternate,
so all see the same neighbours), and how many connection attempts the kernel dropped because
the server's listen queue was full during that client's runs (TcpExtListenOverflows, from
/proc/net/netstat, system-wide). --backlog 5 reproduces http.server's default queue, which a
client that opens N connections at the same moment overflows whatever its wake-ups do.
Standard library only.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def listen_overflows():
    """System-wide count of connection attempts dropped at a full listen queue, or None."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return None


def run_once(cmd, timeout):
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        return None, f"status {r.returncode}: {r.stderr.strip()[-300:]}"
    return dt, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--delay-ms", type=int, default=300)
    ap.add_argument("--backlog", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per client run")
    args = ap.parse_args()
    weft = os.path.join(os.path.abspath(args.build_dir), "weft")
    if not os.path.exists(weft):
        sys.exit(f"slow-server benchmark: {weft} not found (cmake --build {args.build_dir})")
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench/http/slow_server.py"),
                               "--delay-ms", str(args.delay_ms), "--backlog", str(args.backlog)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
        n = str(args.requests)
        client = os.path.join(ROOT, "bench/http/client.weft")
        clients = [
            ("weft parallel_map", [weft, "--allow-net=127.0.0.1", "run", client, url, n, n, "map"]),
            ("weft parallel_map, 1 worker",
             [weft, "--workers", "1", "--allow-net=127.0.0.1", "run", client, url, n, n, "map"]),
            ("python ThreadPoolExecutor",
             [sys.executable, os.path.join(ROOT, "bench/peers/http_client.py"), url, n, n]),
        ]
        want = str(64 * args.requests)
        times = {name: [] for name, _ in clients}
        drops = {name: 0 for name, _ in clients}
        failures = {name: [] for name, _ in clients}
        for _ in range(args.repeat):
            for name, cmd in clients:
                before = listen_overflows()
                dt, out = run_once(cmd, args.timeout)
                after = listen_overflows()
                if before is not None and after is not None:
                    drops[name] += after - before
                if dt is None or out != want:
                    failures[name].append(out if dt is None else f"checksum {out}, expected {want}")
                    continue
                times[name].append(dt)
        print(f"Slow-server HTTP benchmark: {args.requests} GETs at once, each answered after "
              f"{args.delay_ms} ms, listen queue {args.backlog}; {args.repeat} runs per client, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{'client':<30} {'best s':>8} {'median s':>9} {'worst s':>8} {'SYN drops':>10}")
        ok = True
        for name, _ in clients:
            ts = times[name]
            if ts:
                print(f"{name:<30} {min(ts):>8.3f} {statistics.median(ts):>9.3f} "
                      f"{max(ts):>8.3f} {drops[name]:>10}")
            else:
                print(f"{name:<30} {'-':>8} {'-':>9} {'-':>8} {drops[name]:>10}")
            for f in failures[name]:
                print(f"  {name}: {f}")
                ok = False
        return 0 if ok else 1
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
