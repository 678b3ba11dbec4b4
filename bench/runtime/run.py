#!/usr/bin/env python3
"""Runs the C++ runtime benchmarks (weft-bench-runtime) side by side with their Go peers
(bench/peers/runtime_peers.go) and prints a table of whole-process wall times and ratios
(Weft runtime time / Go time; lower is better). Both wall-clock time and CPU time
(user + sys of the child process) are shown: on a shared, loaded machine wall time mostly
measures the neighbours, CPU time measures the program.

    python3 bench/runtime/run.py --build-dir build [--repeat 3] [--only skynet,pingpong]

Builds the Go peer with `go build` (GOCACHE/GOPATH under the build directory, so it works on a
fresh machine and as root). Each program prints its checksum on the last line of stdout; the
script checks that both agree. Times are the best of --repeat runs.
"""
import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name, argument, expected checksum (None: compare the two), target ratio (None: none).
# Targets of issue 19; sleepers' target is memory: <= 2 KiB resident per sleeping task.
BENCHES = [
    ("skynet", None, "499999500000", 0.25),
    ("pingpong", None, "20000100000", 0.25),
    ("spawn", None, "499999500000", None),
    ("yield", None, "2000000", 1.0),
    ("select", None, "600000", 1.0),
    ("sleepers", None, "100000", None),
]


def build_go_peer(build_dir, src="bench/peers/runtime_peers.go", name="runtime_peers"):
    """Builds the Go program `src` (relative to the repository root) into
    BUILD/bench-peers/NAME with caches under the build directory; returns (exe, None) or
    (None, reason). Also used by bench/http/run.py and bench/concurrency/run.py."""
    go = shutil.which("go")
    if not go:
        return None, "go not found (apt-get install golang-go)"
    out_dir = os.path.join(os.path.abspath(build_dir), "bench-peers")
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("GOCACHE", os.path.join(out_dir, "gocache"))
    env.setdefault("GOPATH", os.path.join(out_dir, "gopath"))
    env["GO111MODULE"] = "off"
    exe = os.path.join(out_dir, name)
    r = subprocess.run([go, "build", "-o", exe, os.path.join(ROOT, src)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"go build {src} failed: " + r.stderr.strip()
    return exe, None


def run_once(cmd, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    lines = r.stdout.strip().splitlines()
    extra = {}
    for line in lines[:-1]:
        parts = line.split()
        if len(parts) == 2:
            extra[parts[0]] = parts[1]
    return dt, cpu, (lines[-1] if lines else ""), extra


def best_of(cmd, repeat, env=None):
    """Best wall time and best CPU time over `repeat` runs (taken independently)."""
    best = None
    for _ in range(repeat):
        dt, cpu, checksum, extra = run_once(cmd, env)
        if best is None:
            best = [dt, cpu, checksum, extra]
        else:
            best[0] = min(best[0], dt)
            best[1] = min(best[1], cpu)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated subset of benchmarks")
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    weft = os.path.join(build_dir, "weft-bench-runtime")
    if not os.path.exists(weft):
        print(f"runtime benchmarks: {weft} not found (build the weft-bench-runtime target)")
        return 1
    go_exe, err = build_go_peer(build_dir)
    if err:
        print(f"runtime benchmarks: Go peer unavailable: {err}")
    only = set(filter(None, args.only.split(",")))
    print(f"Runtime benchmarks (C++ runtime alone vs Go {go_version()}), best of {args.repeat}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"{'benchmark':<10} {'weft s':>8} {'go s':>8} {'ratio':>6} {'weft cpu':>9} {'go cpu':>8} "
          f"{'ratio':>6} {'target':>7}  notes")
    ok = True
    for name, arg, expect, target in BENCHES:
        if only and name not in only:
            continue
        cmd_args = [name] + ([arg] if arg else [])
        try:
            w_dt, w_cpu, w_sum, w_extra = best_of([weft] + cmd_args, args.repeat)
        except Exception as e:  # noqa: BLE001
            print(f"{name:<10} weft failed: {e}")
            ok = False
            continue
        g_dt = g_cpu = None
        notes = []
        if go_exe:
            try:
                g_dt, g_cpu, g_sum, g_extra = best_of([go_exe] + cmd_args, args.repeat)
                if g_sum != w_sum:
                    notes.append(f"CHECKSUM MISMATCH weft {w_sum} go {g_sum}")
                    ok = False
                if "kib_per_task" in w_extra:
                    asleep = f", {w_extra['asleep']} asleep" if "asleep" in w_extra else ""
                    notes.append(f"KiB/task weft {w_extra['kib_per_task']}{asleep} go "
                                 f"{g_extra.get('kib_per_task', '?')} (target <= 2)")
            except Exception as e:  # noqa: BLE001
                notes.append(f"go failed: {e}")
        if expect and w_sum != expect:
            notes.append(f"unexpected checksum {w_sum} (want {expect})")
            ok = False
        ratio = f"{w_dt / g_dt:.2f}" if g_dt else "-"
        cratio = f"{w_cpu / g_cpu:.2f}" if g_cpu else "-"
        tgt = f"<={target}" if target else ""
        gs = f"{g_dt:.3f}" if g_dt else "-"
        gc = f"{g_cpu:.3f}" if g_cpu is not None else "-"
        print(f"{name:<10} {w_dt:>8.3f} {gs:>8} {ratio:>6} {w_cpu:>9.3f} {gc:>8} {cratio:>6} "
              f"{tgt:>7}  {'; '.join(notes)}")
    return 0 if ok else 1


def go_version():
    try:
        r = subprocess.run(["go", "version"], capture_output=True, text=True)
        return r.stdout.split()[2]
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
