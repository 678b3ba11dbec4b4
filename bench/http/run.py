#!/usr/bin/env python3
"""The HTTP client benchmark: 10,000 GETs against a local server with 100 and with 1,000
requests in flight, Weft's `http` module (bench/http/client.weft) against Go's net/http client
(bench/peers/http_client.go). Both fetch from the same Go server (bench/http/server.go, 64-byte
bodies, keep-alive), started once for the whole run.

    python3 bench/http/run.py [--build-dir build] [--repeat 5] [--requests 10000]
                              [--inflight 100,1000] [--map]

Prints best-of-N wall time and CPU time (user+sys of the client process) per client and the
Weft/Go ratios (lower is better; the target is <= 1.5 on wall time). Wall time on a shared
machine also measures the neighbours; the two clients are run alternately so both see the same
load. --map adds the per-request parallel_map form of the Weft client. Needs go (`bash
scripts/setup.sh --bench`); Go binaries are built under BUILD_DIR/bench-peers. Standard library
only.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = 1.5


sys.path.insert(0, os.path.join(ROOT, "bench", "runtime"))
import run as runtime_run  # noqa: E402  (build_go_peer)


def go_build(build_dir, src, name):
    exe, err = runtime_run.build_go_peer(build_dir, src, name)
    if err:
        sys.exit(f"http benchmark: {err} (bash scripts/setup.sh --bench)")
    return exe


def run_once(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, cpu, r.stdout.strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--inflight", default="100,1000")
    ap.add_argument("--map", action="store_true", help="also run the parallel_map form")
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    weft = os.path.join(build_dir, "weft")
    if not os.path.exists(weft):
        sys.exit(f"http benchmark: {weft} not found (cmake --build {args.build_dir})")
    server_exe = go_build(build_dir, "bench/http/server.go", "http_server")
    client_exe = go_build(build_dir, "bench/peers/http_client.go", "http_client")
    server = subprocess.Popen([server_exe], stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}/"
        want = str(64 * args.requests)
        go_ver = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2]
        print(f"HTTP client benchmark: {args.requests} GETs of 64 bytes from a local Go server, "
              f"best of {args.repeat}, {os.cpu_count()} CPUs, Go {go_ver}")
        print(f"{'client':<28} {'in flight':>9} {'wall s':>8} {'cpu s':>8} {'req/s':>8} "
              f"{'wall ratio':>10} {'cpu ratio':>9}")
        ok = True
        for c in [int(x) for x in args.inflight.split(",")]:
            clients = [("go net/http", [client_exe, url, str(args.requests), str(c)]),
                       ("weft http (loops)", [weft, "--allow-net=127.0.0.1", "run",
                                              os.path.join(ROOT, "bench/http/client.weft"),
                                              url, str(args.requests), str(c), "loops"]),
                       ("weft http (loops, 1 worker)", [weft, "--workers", "1", "--allow-net=127.0.0.1", "run",
                                                        os.path.join(ROOT, "bench/http/client.weft"),
                                                        url, str(args.requests), str(c), "loops"])]
            if args.map:
                clients.append(("weft http (map)", [weft, "--allow-net=127.0.0.1", "run",
                                                    os.path.join(ROOT, "bench/http/client.weft"),
                                                    url, str(args.requests), str(c), "map"]))
            best = {name: [float("inf"), float("inf")] for name, _ in clients}
            for _ in range(args.repeat):  # alternate, so both see the same neighbours
                for name, cmd in clients:
                    dt, cpu, out = run_once(cmd)
                    if out != want:
                        print(f"  {name}: checksum {out}, expected {want}")
                        ok = False
                    best[name][0] = min(best[name][0], dt)
                    best[name][1] = min(best[name][1], cpu)
            g_dt, g_cpu = best["go net/http"]
            for name, _ in clients:
                dt, cpu = best[name]
                ratio = "" if name.startswith("go") else f"{dt / g_dt:.2f}"
                cratio = "" if name.startswith("go") else f"{cpu / g_cpu:.2f}"
                print(f"{name:<28} {c:>9} {dt:>8.3f} {cpu:>8.3f} {args.requests / dt:>8.0f} "
                      f"{ratio:>10} {cratio:>9}")
                if name == "weft http (loops)" and dt / g_dt > TARGET:
                    print(f"  above the target ratio {TARGET}")
        return 0 if ok else 1
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
