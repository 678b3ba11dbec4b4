#!/usr/bin/env python3
"""A/B of two (or more) Weft binaries on the HTTP client benchmark: one Go server, the binaries
alternated run by run so they see the same neighbours, median and best wall time of each.
For telling a real change from this VM's run-to-run noise (BENCHMARKS.md, "HTTP").

    python3 bench/http/ab.py NAME=PATH NAME=PATH [--runs 12] [--requests 10000] [--inflight 100]

The Go server is build/bench-peers/http_server (built by bench/http/run.py). Standard library only.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="NAME=PATH of a weft executable")
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "bench-peers", "http_server"))
    opts = ap.parse_args()
    bins = dict(b.split("=", 1) for b in opts.binaries)
    if not os.path.exists(opts.server):
        sys.exit(f"no {opts.server}: run bench/http/run.py once to build it")
    client = os.path.join(ROOT, "bench", "http", "client.weft")
    server = subprocess.Popen([opts.server], stdout=subprocess.PIPE, text=True)
    times = {name: [] for name in bins}
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
        for _ in range(opts.runs):
            for name, exe in bins.items():
                t0 = time.perf_counter()
                r = subprocess.run([exe, "--allow-net=127.0.0.1", "run", client, url, str(opts.requests),
                                    str(opts.inflight), "loops"], capture_output=True, text=True, timeout=300)
                if r.returncode != 0:
                    sys.exit(f"{name} failed: {r.stderr.strip()[-300:]}")
                times[name].append(time.perf_counter() - t0)
    finally:
        server.kill()
        server.wait()
    for name, ts in times.items():
        print(f"{name:<16} median {statistics.median(ts):.3f} s   best {min(ts):.3f} s   ({len(ts)} runs)")


if __name__ == "__main__":
    main()
