#!/usr/bin/env python3
"""The Savina actor benchmarks (Imam & Sarkar, "Savina - An Actor Benchmark Suite", AGERE! 2014)
in Weft, each beside an equivalent Erlang/OTP program, run side by side:

    pingpong      two actors, 1,000,000 round trips                       (Savina 1)
    counting      3,000,000 tells to one counter, then an ask             (Savina 2)
    threadring    a token passed 2,500,037 times round a ring of 100      (Savina 3)
    chameneos     100 creatures, 600,000 meetings through a mall          (Savina 4)
    fjthroughput  60 actors x 15,000 messages sent round-robin            (Savina 5)
    fjcreation    100,000 actors created, one message each                (Savina 6)
    big           120 actors x 5,000 pings to pseudo-random peers         (Savina 7)

    bench/actors/run.py [--build-dir build] [--repeat 3] [--only NAME] [--scale F]

Both programs print a checksum and then `elapsed SECONDS`, the time of the run measured inside
the program (from before the first spawn to the last reply), which leaves out the start-up of
the Erlang VM (about 0.2 s here) and of weft. The table shows the best of N of that time for
each, their ratio (Weft / Erlang; the target is <= 0.5x), the best wall time of the whole
process for each, and whether the checksums agree. --scale multiplies the message counts (for a
quick smoke run: --scale 0.01 --repeat 1). The parameters make Erlang/OTP take about 0.5-1 s per
run on the 2-core machine of BENCHMARKS.md.

The Erlang programs (NAME.erl, savina.hrl) are compiled with erlc into BUILD/bench_actors_erl
and run with `erl -noshell -run NAME main ARGS -s erlang halt` (erlang-base; `scripts/setup.sh
--bench` installs it). Exit status 1 when a checksum differs or a program fails.
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
TIMEOUT = 600  # seconds per run

# name, parameters (the same for both programs), which of them count messages (scaled by --scale).
BENCHMARKS = [
    ("pingpong", [1000000], [0]),
    ("counting", [3000000], [0]),
    ("threadring", [100, 2500037], [1]),
    ("chameneos", [100, 600000], [1]),
    ("fjthroughput", [60, 15000], [1]),
    ("fjcreation", [100000], [0]),
    ("big", [120, 5000], [1]),
]


def compile_erlang(out_dir):
    """Compiles every NAME.erl newer than its .beam into out_dir. Returns an error text or None."""
    erlc = shutil.which("erlc")
    if not erlc or not shutil.which("erl"):
        return "erl/erlc not found (scripts/setup.sh --bench installs erlang-base)"
    os.makedirs(out_dir, exist_ok=True)
    for name, _, _ in BENCHMARKS:
        src = os.path.join(HERE, name + ".erl")
        beam = os.path.join(out_dir, name + ".beam")
        hrl = os.path.join(HERE, "savina.hrl")
        if os.path.exists(beam) and os.path.getmtime(beam) >= max(os.path.getmtime(src), os.path.getmtime(hrl)):
            continue
        r = subprocess.run([erlc, "-o", out_dir, src], capture_output=True, text=True, cwd=HERE)
        if r.returncode != 0:
            return f"erlc {name}.erl failed: {(r.stdout + r.stderr).strip()[-400:]}"
    return None


def run_once(cmd, cwd):
    """Runs cmd; returns (checksum, elapsed inside the program, wall seconds) or raises RuntimeError."""
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {TIMEOUT} s")
    wall = time.perf_counter() - t0
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or len(lines) < 2 or not lines[-1].startswith("elapsed "):
        # The error line: `Kind: message` of an uncaught error, `file:line:col: message` of a
        # compile error (followed by the source line and a caret).
        errs = [l for l in r.stderr.strip().splitlines() if ": " in l] or ["no output"]
        err = errs[-1]
        raise RuntimeError(f"exit {r.returncode}: {err[:200]}")
    return lines[-2].strip(), float(lines[-1].split()[1]), wall


def best_of(cmd, repeat, cwd):
    """Best-of-repeat (elapsed, wall) and the checksum (the same in every run, else an error)."""
    runs = [run_once(cmd, cwd) for _ in range(repeat)]
    sums = {s for s, _, _ in runs}
    if len(sums) != 1:
        raise RuntimeError(f"checksum varies between runs: {sorted(sums)}")
    return runs[0][0], min(e for _, e, _ in runs), min(w for _, _, w in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="run one benchmark")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the message counts")
    opts = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, opts.build_dir))
    weft = os.path.join(build, "weft")
    if not os.path.exists(weft):
        sys.exit(f"no {weft}: build first (make)")
    erl_dir = os.path.join(build, "bench_actors_erl")
    erl_err = compile_erlang(erl_dir)
    try:
        erts = subprocess.run(["erl", "-noshell", "-eval",
                               'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
                              capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        erts = "?"

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; weft {weft} "
          f"(default workers); Erlang/OTP {erts} (default schedulers)")
    if erl_err:
        print("erlang:", erl_err)
    print(f"best of {opts.repeat}; run = time inside the program, wall = whole process, seconds\n")
    header = ["benchmark", "params", "weft run", "erlang run", "ratio", "weft wall", "erlang wall", "checksum"]
    rows = []
    failed = False
    for name, params, counts in BENCHMARKS:
        if opts.only and name != opts.only:
            continue
        args = [str(max(1, int(p * opts.scale)) if i in counts else p) for i, p in enumerate(params)]
        try:
            w_sum, w_run, w_wall = best_of([weft, "run", os.path.join(HERE, name + ".weft")] + args, opts.repeat, HERE)
            w_cells = [f"{w_run:.3f}", f"{w_wall:.3f}"]
        except RuntimeError as e:
            w_sum, w_run, w_cells, failed = None, None, ["FAIL", "FAIL"], True
            print(f"  {name}: weft {e}", flush=True)
        e_sum = e_run = None
        e_cells = ["n/a", "n/a"]
        if not erl_err:
            try:
                e_sum, e_run, e_wall = best_of(["erl", "-noshell", "-pa", erl_dir, "-run", name, "main"] + args +
                                               ["-s", "erlang", "halt"], opts.repeat, HERE)
                e_cells = [f"{e_run:.3f}", f"{e_wall:.3f}"]
            except RuntimeError as e:
                e_cells, failed = ["FAIL", "FAIL"], True
                print(f"  {name}: erlang {e}", flush=True)
        if w_sum is not None and e_sum is not None:
            check = f"ok {w_sum}" if w_sum == e_sum else f"DIFFERS weft {w_sum} erlang {e_sum}"
            failed = failed or w_sum != e_sum
        else:
            check = w_sum or e_sum or "-"
        ratio = f"{w_run / e_run:.2f}x" if w_run and e_run else "n/a"
        rows.append([name, " ".join(args), w_cells[0], e_cells[0], ratio, w_cells[1], e_cells[1], check])
        print(f"  {name:<12} weft {w_cells[0]:>8}  erlang {e_cells[0]:>8}  {ratio}", flush=True)

    print()
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i in (0, 1, 7) else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print("\ntarget: each Weft run <= 0.5x Erlang/OTP's (issue 16)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
