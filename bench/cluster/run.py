#!/usr/bin/env python3
"""Cluster mode benchmark (BENCHMARKS.md, "Cluster"): a nats-server with JetStream on a free
loopback port and local `weft worker`s, all started here and always stopped.

Measures (medians of --runs):
  * remote no-op task overhead, sequential: N one-item parallel_map(inc, [i], cluster=True)
    calls (p50/p99 per call), with one worker;
  * pipelined: parallel_map(inc, range(N), cluster=True) with two workers (tasks/s), and the
    same parallel_map locally;
  * CPU-bound scaling: 200 items of ~20 ms (spin calibrated here): local (--workers 2, and
    --workers 1) vs one worker vs two workers (each `--workers 1`).
Usage: bench/cluster/run.py [--weft build/weft] [--runs 3]
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", default=os.path.join(HERE, "..", "..", "build", "weft"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--pipe", type=int, default=20000)
    args = ap.parse_args()
    weft = os.path.abspath(args.weft)
    tmp = tempfile.mkdtemp(prefix="weft_cluster_bench_")
    procs = []

    def start(cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        procs.append(p)
        return p

    def stop(p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    try:
        port = free_port()
        url = "nats://127.0.0.1:%d" % port
        start(["nats-server", "-js", "-sd", os.path.join(tmp, "js"), "-a", "127.0.0.1", "-p", str(port)])
        time.sleep(1)
        counter = [0]

        def cluster_run(workers, slots, prog, *pargs, flags=()):
            counter[0] += 1
            name = "b%d" % counter[0]
            ws = [start([weft, "worker", "--cluster", url, "--cluster-name", name, "--name", "w%d" % i,
                         "--workers", str(slots)]) for i in range(workers)]
            time.sleep(0.5)
            try:
                out = subprocess.run([weft, *flags, "run", "--cluster", url, "--cluster-name", name,
                                      os.path.join(HERE, prog), *map(str, pargs)],
                                     capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr)
                return out.stdout.strip()
            finally:
                for w in ws:
                    stop(w)

        def local_run(prog, *pargs, flags=()):
            out = subprocess.run([weft, *flags, "run", os.path.join(HERE, prog), *map(str, pargs)],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            return out.stdout.strip()

        def median_of(fn, parse):
            vals, lines = [], []
            for _ in range(args.runs):
                line = fn()
                lines.append(line)
                vals.append(parse(line))
            return statistics.median(vals), lines

        num = lambda key: (lambda line: float(line.split(key + "=")[1].split("us")[0]))
        p50, lines = median_of(lambda: cluster_run(1, 1, "overhead.weft", "seq", args.seq), num("p50"))
        print("sequential, 1 worker:      median p50 %.0f us per call   (%s)" % (p50, " | ".join(lines)))
        rate = lambda line: float(line.split()[3])
        for slots in (1, 4):
            r, lines = median_of(lambda: cluster_run(2, slots, "overhead.weft", "pipe", args.pipe), rate)
            print("pipelined, 2 workers x %d: median %.0f tasks/s   (%s)" % (slots, r, " | ".join(lines)))
        r, lines = median_of(lambda: local_run("overhead.weft", "local", args.pipe), rate)
        print("local parallel_map:        median %.0f items/s   (%s)" % (r, " | ".join(lines)))

        iters = int(local_run("calibrate.weft"))
        secs = lambda line: float(line.split()[3].rstrip("s"))
        print("spin(%d) ~ 20 ms" % iters)
        for label, fn in (
                ("local --workers 2", lambda: local_run("scaling.weft", "local", iters, flags=("--workers", "2"))),
                ("local --workers 1", lambda: local_run("scaling.weft", "local", iters, flags=("--workers", "1"))),
                ("1 worker", lambda: cluster_run(1, 1, "scaling.weft", "cluster", iters)),
                ("2 workers", lambda: cluster_run(2, 1, "scaling.weft", "cluster", iters))):
            t, lines = median_of(fn, secs)
            print("200 x 20 ms, %-18s median %.2f s   (%s)" % (label, t, " | ".join(lines)))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
