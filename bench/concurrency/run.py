#!/usr/bin/env python3
"""Concurrency benchmarks of the Weft language (issue: concurrency in the language), side by side
with Go and Erlang where the spec names a peer, and Weft against itself where the figure is a
ratio of two Weft modes:

    skynet_deferred   skynet 1M with deferred calls          vs Go skynet    target <= 0.5x Go
    skynet_spawn      skynet 1M with spawn + channels         vs Go, Erlang   target <= 0.5x Go
    pingpong          200,000 channel round trips             vs Go           target <= 1.0x Go
    parallel_cpu      CPU-bound parallel_map, all cores vs --workers 1        target >= 0.9 x cores
    deferred_cost     1M deferred calls of a leaf function vs --sequential    (ratio reported)
    deferred_cost_used    the same, a callee that makes a call, value used at once  (ratio reported)
    deferred_cost_record  the same, the caller working before the use: a record
                      until the callee is predicted quick (vm/quick_calls.h)    (ratio reported)
    deferred_cost_long    the same, a callee too long to be predicted quick (a
                      40-iteration loop): a record every time, 200,000 calls   (ratio reported)
    waits             ten 100 ms waits, default vs --sequential               (time saved reported)

    bench/concurrency/run.py [--build-dir build] [--repeat 3]

Best-of-N wall times. The Go peer is bench/peers/runtime_peers.go (built by bench/runtime/run.py's
helper), the Erlang peer bench/peers/skynet.erl (escript). Standard library only.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "runtime"))
import run as runtime_run  # noqa: E402  (build_go_peer)


def best(cmd, repeat):
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
        times.append(dt)
        out = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, opts.build_dir))
    weft = os.path.join(build, "weft")
    if not os.path.exists(weft):
        sys.exit(f"no {weft}: build first (make)")
    cores = os.cpu_count() or 1
    go, go_err = runtime_run.build_go_peer(build)
    escript = shutil.which("escript")
    erl_src = os.path.join(ROOT, "bench", "peers", "skynet.erl")
    w = lambda name: os.path.join(HERE, name + ".weft")  # noqa: E731

    print(f"machine: {cores} cores; weft {weft}")
    if go_err:
        print("go peer:", go_err)
    print(f"best of {opts.repeat}, wall seconds\n")
    print(f"{'benchmark':<20} {'weft s':>8} {'peer':<16} {'peer s':>8} {'ratio':>7}  target / note")

    def row(name, wt, peer, pt, target, note=""):
        ratio = f"{wt / pt:.2f}x" if pt else "n/a"
        pt_s = f"{pt:.3f}" if pt else "n/a"
        print(f"{name:<20} {wt:>8.3f} {peer:<16} {pt_s:>8} {ratio:>7}  {target} {note}".rstrip())

    go_skynet = best([go, "skynet", "1000000"], opts.repeat) if go else (None, None)
    erl_skynet = best([escript, erl_src, "1000000"], opts.repeat) if escript else (None, None)
    for name in ("skynet_deferred", "skynet_spawn"):
        t, out = best([weft, "run", w(name)], opts.repeat)
        note = "" if go_skynet[1] in (None, out) else f"CHECKSUM {out} != {go_skynet[1]}"
        row(name, t, "go", go_skynet[0], "<= 0.5x Go", note)
        if erl_skynet[0]:
            row("", t, "erlang", erl_skynet[0], "")

    t, out = best([weft, "run", w("pingpong")], opts.repeat)
    g = best([go, "pingpong", "200000"], opts.repeat) if go else (None, None)
    row("pingpong", t, "go", g[0], "<= 1.0x Go", "" if g[1] in (None, out) else f"CHECKSUM {out} != {g[1]}")

    t_all, _ = best([weft, "run", w("parallel_cpu")], opts.repeat)
    t_one, _ = best([weft, "--workers", "1", "run", w("parallel_cpu")], opts.repeat)
    row("parallel_cpu", t_all, "--workers 1", t_one, f">= {0.9 * cores:.1f}x speed-up",
        f"speed-up {t_one / t_all:.2f}x on {cores} cores")

    for name, calls in (("deferred_cost", 1e6), ("deferred_cost_used", 1e6), ("deferred_cost_record", 1e6),
                        ("deferred_cost_long", 2e5)):
        t_def, _ = best([weft, "run", w(name)], opts.repeat)
        t_seq, _ = best([weft, "--sequential", "run", w(name)], opts.repeat)
        row(name, t_def, "--sequential", t_seq, "close to 1x",
            f"{(t_def - t_seq) / calls * 1e9:.0f} ns extra per deferred call")

    t_def, _ = best([weft, "run", w("waits")], opts.repeat)
    t_seq, _ = best([weft, "--sequential", "run", w("waits")], opts.repeat)
    row("waits", t_def, "--sequential", t_seq, "60-80% less time", f"{100 * (1 - t_def / t_seq):.0f}% less time")


if __name__ == "__main__":
    main()
