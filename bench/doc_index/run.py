#!/usr/bin/env python3
"""Compares examples/doc_index.weft with its Python peer (bench/doc_index/doc_index.py) on the
same folder: Weft with --workers 1 and with one worker per core, Python with a process pool and
with a thread pool (concurrent.futures, one worker per core). Checks that every variant prints
the same summary (all but the database and timing lines) and prints files/s, best of N runs.

    bench/doc_index/run.py [--build-dir build] [--root /usr/share/doc] [--repeat N] [--no-threads]

Each run writes its database to a temporary folder. Standard library only.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 1800  # seconds per run
ELAPSED_RE = re.compile(r"^elapsed ([0-9.]+) s, ([0-9,.]+) files/s$")


def summary(out):
    """The lines every variant must agree on: all but the database and elapsed lines."""
    return [l for l in out.splitlines() if not l.startswith(("database ", "elapsed "))]


def run_once(cmd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    m = next((ELAPSED_RE.match(l) for l in p.stdout.splitlines() if ELAPSED_RE.match(l)), None)
    if not m:
        raise RuntimeError(f"no elapsed line in the output of {' '.join(cmd)}")
    return wall, float(m.group(1)), float(m.group(2).replace(",", "")), p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--root", default="/usr/share/doc")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-threads", action="store_true", help="skip the Python thread-pool run")
    a = ap.parse_args()
    weft = os.path.join(REPO, a.build_dir, "weft")
    example = os.path.join(REPO, "examples", "doc_index.weft")
    peer = os.path.join(HERE, "doc_index.py")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "index.db")
        caps = [f"--allow-read={a.root},{db}", f"--allow-write={db}"]
        variants = [
            ("weft --workers 1", [weft, "--workers", "1"] + caps + ["run", example, a.root, db]),
            (f"weft --workers {cores}", [weft, "--workers", str(cores)] + caps + ["run", example, a.root, db]),
            (f"python3 processes ({cores})", [sys.executable, peer, a.root, db, "--workers", str(cores)]),
        ]
        if not a.no_threads:
            variants.append((f"python3 threads ({cores})",
                             [sys.executable, peer, a.root, db, "--workers", str(cores), "--threads"]))
        rows = []
        reference = None
        for name, cmd in variants:
            best = None
            for _ in range(a.repeat):
                wall, elapsed, rate, out = run_once(cmd)
                if reference is None:
                    reference = summary(out)
                    print("\n".join(out.splitlines()[:14]))
                    print()
                elif summary(out) != reference:
                    print(f"MISMATCH: {name} prints a different summary:\n{out}", file=sys.stderr)
                    return 1
                if best is None or elapsed < best[1]:
                    best = (wall, elapsed, rate)
            rows.append((name, *best))
            print(f"  {name}: {best[1]:.2f} s, {best[2]:,.1f} files/s", flush=True)
    base = rows[0][3]
    print()
    print(f"{'variant':<26} {'wall s':>8} {'elapsed s':>10} {'files/s':>10} {'vs weft -w1':>12}")
    for name, wall, elapsed, rate in rows:
        print(f"{name:<26} {wall:>8.2f} {elapsed:>10.2f} {rate:>10,.1f} {rate / base:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
