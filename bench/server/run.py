#!/usr/bin/env python3
"""bench/server/run.py — the HTTP server benchmark: Weft's http.serve beside Go's net/http.

Each server answers GET / ("hello, world") and POST /echo (a JSON body parsed and dumped again);
wrk drives each for DURATION seconds with CONNECTIONS connections on loopback. Both servers and
wrk get the same CPU set (taskset): with 2 cores, the server and wrk share them, as they would
on one machine. Reports requests/s and p99 latency of each and the ratios (Weft / Go).

    python3 bench/server/run.py [--weft build/weft] [--duration 10] [--connections 100] [--cpus 0,1]

Needs wrk and go (scripts/setup.sh --bench installs them). Standard library only.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "server")


def start(cmd, cpus):
    p = subprocess.Popen(["taskset", "-c", cpus] + cmd, stdout=subprocess.PIPE, text=True)
    port = p.stdout.readline().strip()
    if not port.isdigit():
        p.kill()
        sys.exit("server did not start: " + " ".join(cmd))
    return p, int(port)


def wrk(port, path, script, duration, connections, cpus):
    cmd = ["taskset", "-c", cpus, "wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency"]
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        print(out, file=sys.stderr)
    return rps, p99


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weft", default=os.path.join(ROOT, "build", "weft"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--cpus", default="0-%d" % (os.cpu_count() - 1))
    opts = ap.parse_args()
    for tool in ("wrk", "go", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/setup.sh --bench")
    go_bin = os.path.join(ROOT, "build", "bench-peers", "http_server_go")
    os.makedirs(os.path.dirname(go_bin), exist_ok=True)
    subprocess.run(["go", "build", "-o", go_bin, os.path.join(HERE, "server.go")], check=True,
                   env=dict(os.environ, GOCACHE=os.path.join(ROOT, "build", "go-cache"), GO111MODULE="off"))
    servers = {
        "weft": [opts.weft, "--allow-net=127.0.0.1", "run", os.path.join(HERE, "hello.weft")],
        "go": [go_bin],
    }
    results = {}
    for name, cmd in servers.items():
        p, port = start(cmd, opts.cpus)
        try:
            time.sleep(0.5)
            wrk(port, "/", None, 2, opts.connections, opts.cpus)  # warm-up
            results[(name, "hello")] = wrk(port, "/", None, opts.duration, opts.connections, opts.cpus)
            results[(name, "echo")] = wrk(port, "/echo", "echo.lua", opts.duration, opts.connections, opts.cpus)
        finally:
            p.kill()
            p.wait()
    print(f"wrk -c {opts.connections} -d {opts.duration}s, CPUs {opts.cpus} shared by server and wrk")
    print(f"{'case':<8}{'server':<8}{'req/s':>12}{'p99 ms':>10}")
    for case in ("hello", "echo"):
        for name in servers:
            rps, p99 = results[(name, case)]
            print(f"{case:<8}{name:<8}{rps:>12.0f}{p99:>10.2f}")
        w, g = results[("weft", case)], results[("go", case)]
        print(f"{case:<8}{'ratio':<8}{w[0] / g[0]:>11.2f}x{w[1] / g[1]:>9.2f}x   (Weft/Go: req/s, p99)")


if __name__ == "__main__":
    main()
