#!/usr/bin/env python3
"""The Lisp surface beside Weft and Lua 5.4 (issue 20): fib(30) and a 10M-iteration named-let
loop, each written as NAME.wlisp, NAME.weft and NAME.lua in this folder. Checks that the three
print the same thing and prints best-of-N wall times and the ratios Lisp/Weft (target <= 1.1:
the same back end runs both) and Lisp/Lua.

    bench/lisp/run.py [--build-dir build] [--repeat 5]

Standard library only.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = [("fib", "fib(30), recursive calls"), ("loop", "named-let loop, 10M iterations")]


def best_of(cmd, repeat):
    best, out = None, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            return None, p.stderr
        best = dt if best is None else min(best, dt)
        out = p.stdout
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=5)
    opts = ap.parse_args()
    weft = os.path.join(ROOT, opts.build_dir, "weft") if not os.path.isabs(opts.build_dir) else \
        os.path.join(opts.build_dir, "weft")
    lua = shutil.which("lua5.4")
    print(f"{'program':<34} {'lisp s':>8} {'weft s':>8} {'lua s':>8} {'lisp/weft':>10} {'lisp/lua':>9}")
    bad = False
    for name, what in PROGRAMS:
        t_l, o_l = best_of([weft, "run", os.path.join(HERE, name + ".wlisp")], opts.repeat)
        t_w, o_w = best_of([weft, "run", os.path.join(HERE, name + ".weft")], opts.repeat)
        t_u, o_u = best_of([lua, os.path.join(HERE, name + ".lua")], opts.repeat) if lua else (None, None)
        if t_l is None or t_w is None or o_l != o_w or (t_u is not None and o_u != o_l):
            print(f"{what:<34} FAIL (outputs differ or a run failed)")
            bad = True
            continue
        lua_s = f"{t_u:8.3f}" if t_u is not None else "     n/a"
        lua_r = f"{t_l / t_u:9.2f}" if t_u is not None else "      n/a"
        print(f"{what:<34} {t_l:8.3f} {t_w:8.3f} {lua_s} {t_l / t_w:10.2f} {lua_r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
