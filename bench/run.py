#!/usr/bin/env python3
"""Runs the language benchmarks (bench/lang/NAME.{weft,lua,py}) with Weft, Lua 5.4 and CPython
side by side, checks that the three print the same output, and prints a table of best-of-N wall
times and ratios (Weft time / peer time; lower is better).

    bench/run.py [--build-dir build] [--only NAME] [--repeat N]

A failing or missing interpreter is reported as FAIL / n/a in its column; the run continues.
Afterwards (unless --only is given) bench/{runtime,concurrency,actors,http,doc_index,postgres}/run.py run, where
present, with the same --build-dir.
Standard library only.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LANG_DIR = os.path.join(HERE, "lang")
TIMEOUT = 600  # seconds per single run

# Order of the table; every NAME has NAME.weft, NAME.lua and NAME.py in bench/lang.
BENCHMARKS = [
    ("fib", "fib(32), recursive calls"),
    ("loop", "numeric loop, 10M iterations"),
    ("closure", "5M closure calls"),
    ("method", "5M method calls"),
    ("strings", "string building, 2M pieces"),
    ("wordcount", "dict word count, 1M words"),
    ("nbody", "n-body, 500k steps"),
    ("bintrees", "binary-trees, depth 15"),
]


def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}"


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "not available"


def run_once(cmd):
    """Returns (seconds, stdout) or (None, error text)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {TIMEOUT} s"
    except OSError as e:
        return None, str(e)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"exit {proc.returncode}: " + (err[-1] if err else "")
    return elapsed, proc.stdout.decode("utf-8", "replace")


def best_of(cmd, repeat):
    """Best wall time of `repeat` runs, and the output of the first one."""
    best, output = None, None
    for _ in range(repeat):
        t, out = run_once(cmd)
        if t is None:
            return None, out
        if output is None:
            output = out
        elif out != output:
            return None, "output differs between runs"
        best = t if best is None else min(best, t)
    return best, output


def fmt_time(t):
    return f"{t:.3f}" if isinstance(t, float) else t


def fmt_ratio(a, b):
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return f"{a / b:.2f}x"
    return "-"


def real_python(path):
    """The interpreter binary behind `path`: a version manager's shim (pyenv's is a shell
    script that runs `pyenv exec`) adds its own start-up, 50-200 ms, to every CPython time."""
    if not path:
        return path
    try:
        out = subprocess.run([path, "-c", "import sys; print(sys.executable)"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        return out if out and os.access(out, os.X_OK) else path
    except (OSError, subprocess.SubprocessError):
        return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build", help="directory holding the weft binary")
    ap.add_argument("--only", help="run only this benchmark (name, e.g. fib)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per program, best kept")
    opts = ap.parse_args()

    weft = os.path.abspath(os.path.join(opts.build_dir, "weft"))
    lua = shutil.which("lua5.4")
    python = real_python(shutil.which("python3") or sys.executable)
    peers = {
        "weft": [weft, "run"] if os.access(weft, os.X_OK) else None,
        "lua": [lua] if lua else None,
        "python": [python] if python else None,
    }
    ext = {"weft": ".weft", "lua": ".lua", "python": ".py"}

    print(f"machine: {machine_info()}")
    print(f"weft:    {weft if peers['weft'] else weft + ' (not built)'}")
    print(f"lua:     {version_of([lua, '-v']) if lua else 'not installed'}")
    print(f"python:  {version_of([python, '--version'])}")
    print(f"best of {opts.repeat} runs, wall time in seconds; ratio = Weft / peer (lower is better)")
    print()

    header = ["benchmark", "Weft s", "Lua s", "Python s", "Weft/Lua", "Weft/Python", "note"]
    rows = []
    any_failure = False
    selected = [b for b in BENCHMARKS if not opts.only or b[0] == opts.only]
    if not selected:
        print(f"unknown benchmark {opts.only!r}; known: {', '.join(b[0] for b in BENCHMARKS)}")
        return 2
    for name, _desc in selected:
        times, outputs, notes = {}, {}, []
        for peer, cmd in peers.items():
            prog = os.path.join(LANG_DIR, name + ext[peer])
            if cmd is None:
                times[peer] = "n/a"
                continue
            if not os.path.exists(prog):
                times[peer] = "missing"
                continue
            t, out = best_of(cmd + [prog], opts.repeat)
            if t is None:
                times[peer] = "FAIL"
                notes.append(f"{peer}: {out}")
                any_failure = any_failure or peer != "weft"
            else:
                times[peer] = t
                outputs[peer] = out
        distinct = set(outputs.values())
        if len(distinct) > 1:
            reference = outputs.get("lua", outputs.get("python"))
            for peer, out in outputs.items():
                if out != reference:
                    notes.append(f"{peer} output differs: {out.strip()[:60]!r}")
                    times[peer] = "WRONG"
        rows.append([
            name,
            fmt_time(times["weft"]),
            fmt_time(times["lua"]),
            fmt_time(times["python"]),
            fmt_ratio(times["weft"], times["lua"]),
            fmt_ratio(times["weft"], times["python"]),
            "; ".join(notes),
        ])
        print_row_progress(name, rows[-1])

    print()
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i in (0, 6) else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))

    # Then the other suites, each with the same build directory (each is optional).
    for sub in (() if opts.only else ("runtime", "concurrency", "actors", "http", "doc_index", "postgres")):
        script = os.path.join(HERE, sub, "run.py")
        if not os.path.exists(script):
            continue
        print()
        print(f"== {sub} benchmarks (bench/{sub}/run.py)")
        sys.stdout.flush()
        rc = subprocess.call([sys.executable, script, "--build-dir", opts.build_dir])
        if rc != 0:
            print(f"bench/{sub}/run.py exited with status {rc}")
    return 1 if any_failure else 0


def print_row_progress(name, row):
    print(f"  {name:<10} weft {row[1]:>8}  lua {row[2]:>8}  python {row[3]:>8}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
