#!/usr/bin/env python3
"""Tests of the `weft` command line: --help, --version, -e, check, dis, test, the REPL
(driven through a pipe), exit statuses and error formats, --trace-out, the progress bar (on a
pipe and on a pseudo-terminal), tracebacks across tasks and examples/doc_index.weft on a small
folder. Usage: cli_test.py --weft PATH"""
import argparse
import gzip
import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def run(weft, args, stdin=None, timeout=30):
    p = subprocess.run([weft] + args, input=stdin, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    if cond:
        print(f"ok    {name}")
    else:
        print(f"FAIL  {name}\n{detail}")
        failures.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    weft = os.path.abspath(ap.parse_args().weft)

    code, out, err = run(weft, ["--help"])
    check("--help exits 0 and lists the commands", code == 0 and "weft run FILE" in out and "REPL" in out, out + err)

    code, out, _ = run(weft, ["--version"])
    check("--version", code == 0 and out.startswith("weft "), out)

    code, out, _ = run(weft, ["-e", "print(sum(range(10)))"])
    check("-e runs code", code == 0 and out == "45\n", out)

    code, out, _ = run(weft, ["-e", "print(args)", "a", "b"])
    check("-e passes args", out == "['a', 'b']\n", out)

    code, _, err = run(weft, ["--bogus"])
    check("unknown flag exits 2", code == 2 and "unknown flag" in err, err)

    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "bad.weft")
        with open(bad, "w") as f:
            f.write("x = 1\nif x\n    print(x)\n")
        code, out, err = run(weft, ["check", bad])
        check("check reports a syntax error with file:line:col and a caret",
              code == 2 and f"{bad}:2:" in err and "^" in err, err)

        good = os.path.join(d, "good.weft")
        with open(good, "w") as f:
            f.write("print('never runs')\n")
        code, out, err = run(weft, ["check", good])
        check("check does not run the program", code == 0 and out == "", out + err)

        code, out, _ = run(weft, ["dis", good])
        check("dis prints bytecode", code == 0 and "function <module>" in out, out)

        boom = os.path.join(d, "boom.weft")
        with open(boom, "w") as f:
            f.write("def f():\n    raise ValueError('boom')\nf()\n")
        code, out, err = run(weft, ["run", boom])
        check("uncaught error: traceback and exit 1",
              code == 1 and "Traceback" in err and f"{boom}:2 in f" in err and err.strip().endswith("ValueError: boom"),
              err)

        code, out, err = run(weft, [boom])
        check("weft FILE is weft run FILE", code == 1 and "ValueError: boom" in err, err)

    code, out, err = run(weft, ["test", os.path.join(HERE, "sample_test.weft")])
    check("weft test runs test_* functions and fails on a failing one",
          code == 1 and "PASS" in out and "test_add" in out and "FAIL" in out and "test_fails" in out
          and "2 passed, 1 failed" in out and "AssertionError: one plus one" in err, out + err)

    # The REPL, fed through a pipe: expression values are echoed, blocks end with an empty line,
    # names persist between inputs, errors are reported and the session goes on.
    session = "x = 40\nx + 2\ndef f(n):\n    return n * 2\n\nf(x)\nundefined_name\n'done'\n"
    code, out, err = run(weft, [], stdin=session)
    check("REPL echoes values and keeps names", code == 0 and out.splitlines() == ["42", "80", "'done'"],
          repr(out) + err)
    check("REPL reports errors and continues", "undefined_name" in err, err)

    session = "xs = [1,\n  2,\n  3]\nprint(len(xs))\n"
    code, out, err = run(weft, [], stdin=session)
    check("REPL continues an open bracket", out == "3\n", repr(out) + err)

    observability_tests(weft)
    used_at_once_test(weft)
    doc_index_test(weft)

    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s)")
    return 1 if failures else 0


TRACED_PROGRAM = """
def fetch_user(uid):
    sleep(0.002)
    return {"id": uid}

def fetch_posts(uid):
    return [uid, uid + 1]

def dashboard(uid):
    user = fetch_user(uid)
    posts = fetch_posts(uid)
    return [user["id"], len(posts)]

print(parallel_map(dashboard, range(3), workers=2))
"""


def check_trace_json(path):
    """Validates a --trace-out file; returns a list of problems (empty when it is fine)."""
    problems = []
    with open(path) as f:
        doc = json.load(f)
    events = doc.get("traceEvents")
    if not isinstance(events, list) or not events:
        return ["no traceEvents list"]
    slices = [e for e in events if e.get("ph") == "X"]
    for e in slices:
        for k in ("pid", "tid", "ts", "dur", "name"):
            if k not in e:
                problems.append(f"slice lacks {k}: {e}")
        if e.get("dur", 0) < 0:
            problems.append(f"negative duration: {e}")
    names = {e["name"] for e in slices}
    for prefix in ("main#", "dashboard#", "fetch_user#", "fetch_posts#"):
        if not any(n.startswith(prefix) for n in names):
            problems.append(f"no slice named {prefix}N (names: {sorted(names)})")
    # A worker runs one task at a time: slices on a track never overlap.
    by_tid = {}
    for e in slices:
        by_tid.setdefault(e["tid"], []).append(e)
    for tid, xs in by_tid.items():
        xs.sort(key=lambda e: e["ts"])
        for a, b in zip(xs, xs[1:]):
            if a["ts"] + a["dur"] > b["ts"] + 0.001:
                problems.append(f"overlapping slices on track {tid}: {a['name']} and {b['name']}")
    # Each track is named after its worker.
    named = {e["tid"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
    if set(by_tid) - named:
        problems.append(f"tracks without a thread_name: {sorted(set(by_tid) - named)}")
    # Flow arrows: each start has a finish with the same id, not earlier, and lies inside a
    # slice of its track (the spawner's run).
    starts = {e["id"]: e for e in events if e.get("ph") == "s"}
    ends = {e["id"]: e for e in events if e.get("ph") == "f"}
    if not starts:
        problems.append("no flow events")
    if set(starts) != set(ends):
        problems.append("unmatched flow events")
    for i, s in starts.items():
        f = ends.get(i)
        if f and f["ts"] < s["ts"]:
            problems.append(f"flow {i} ends before it starts")
        inside = any(x["tid"] == s["tid"] and x["ts"] - 0.001 <= s["ts"] <= x["ts"] + x["dur"] + 0.001
                     for x in slices)
        if not inside:
            problems.append(f"flow {i} starts outside any slice")
    return problems


def run_on_pty(cmd, timeout=30):
    """Runs cmd with stderr on a pseudo-terminal; returns (code, stdout, terminal output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    term = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal (EIO on Linux)
                break
            if not chunk:
                break
            term += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    try:
        out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return p.returncode, out.decode(), term.decode(errors="replace")


def observability_tests(weft):
    code, out, _ = run(weft, ["--help"])
    check("--help lists --trace-out, --default-timeout and --max-tasks",
          all(f in out for f in ("--trace-out FILE.json", "--default-timeout D", "--max-tasks N")), out)
    code, _, err = run(weft, ["--max-tasks", "0", "-e", "1"])
    check("--max-tasks needs a positive number", code == 2 and "--max-tasks" in err, err)
    code, _, err = run(weft, ["--default-timeout", "soon", "-e", "1"])
    check("--default-timeout needs a duration", code == 2 and "--default-timeout" in err, err)
    code, out, err = run(weft, ["--default-timeout=20ms", "-e", "channel().recv()"])
    check("--default-timeout=D bounds a recv", code == 1 and "TimeoutError: channel recv" in err, err)

    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "traced.weft")
        with open(prog, "w") as f:
            f.write(TRACED_PROGRAM)
        trace = os.path.join(d, "trace.json")
        code, out, err = run(weft, ["--trace-out", trace, "run", prog])
        check("--trace-out runs the program", code == 0 and out == "[[0, 2], [1, 2], [2, 2]]\n", out + err)
        problems = check_trace_json(trace) if os.path.exists(trace) else ["no file written"]
        check("--trace-out writes a valid Chrome/Perfetto trace", not problems, "\n".join(problems[:10]))
        trace2 = os.path.join(d, "trace2.json")
        code, out, err = run(weft, ["--trace", f"--trace-out={trace2}", "run", prog])
        check("--trace and --trace-out together", code == 0 and "[task #" in err and not check_trace_json(trace2),
              err[-500:])
        check("--trace says where each task was created",
              f"created at {prog}:10 in dashboard" in err and "] started (worker" in err, err[-800:])
        check("--trace names deferred tasks from their creation, with kind, site and run time",
              re.search(r"\[task fetch_user#\d+\] created at " + re.escape(prog) + r":10 in dashboard", err) is not None
              and re.search(r"\[task fetch_user#\d+\] started \(deferred\) at " + re.escape(prog) + ":10", err) is not None
              and re.search(r"\[task fetch_user#\d+\] done \d+\.\dms \(worker", err) is not None, err[-800:])
        code, out, err = run(weft, ["--stats", "run", prog])
        check("--stats prints the counters, the peak of live tasks and blocked time by cause",
              code == 0 and re.search(r"weft stats: \d+ tasks spawned \(peak \d+ alive at once\)", err) is not None
              and re.search(r"time blocked by cause \(summed over tasks\): .*sleep \d+\.\d+ s \(\d+ waits?\)", err)
              is not None, err)
        code, _, err = run(weft, ["--trace-out", os.path.join(d, "no", "such", "dir.json"), "-e", "print(1)"])
        check("--trace-out to an unwritable path fails with a message", code == 1 and "cannot write the trace" in err,
              err)

        # progress=True: nothing at all on a pipe; a bar on a terminal.
        prog = os.path.join(d, "progress.weft")
        with open(prog, "w") as f:
            f.write("def work(i):\n    sleep(0.002)\n    return i\n"
                    "print(len(parallel_map(work, range(100), workers=4, progress=True)))\n")
        code, out, err = run(weft, ["run", prog])
        check("progress=True on a pipe prints nothing extra", code == 0 and out == "100\n" and err == "",
              repr(out) + repr(err))
        code, out, term = run_on_pty([weft, "run", prog])
        check("progress=True on a terminal draws a bar on stderr",
              code == 0 and out == "100\n" and "parallel_map [" in term and "100/100 100%" in term, repr(term))

        # An error raised in the task that used a failed task's value shows where that task was
        # started, where it failed and where its value was used.
        prog = os.path.join(d, "chain.weft")
        with open(prog, "w") as f:
            f.write("def inner(x):\n    raise ValueError('bad ' + str(x))\n\n"
                    "def fetch_user(uid):\n    return inner(uid)\n\n"
                    "def main():\n    t = spawn fetch_user(4)\n    print(t + 1)\n\nmain()\n")
        code, out, err = run(weft, ["run", prog])
        lines = [l.strip() for l in err.splitlines()]
        want = [f"{prog}:11 in <module>", f"{prog}:9 in main, waiting for task fetch_user#",
                f"task fetch_user#", f"started at {prog}:8 in main:", f"{prog}:5 in fetch_user",
                f"{prog}:2 in inner", "ValueError: bad 4"]
        check("traceback across tasks: used at, started at, failed at",
              code == 1 and all(any(w in l for l in lines) for w in want), err)


USED_AT_ONCE_PROGRAM = """
def total_len(words):
    return sum([len(w) for w in words])

def main(k, xs):
    a = total_len(["a"])
    b = a * 2
    c = total_len(["bb"])
    k = k * 2 + len(xs) + xs[0]
    d = c + k
    e = total_len(["ccc"])
    print(d)
    f = total_len(["dddd"])
    for i in range(2):
        k += i
    g = total_len(["eeeee"])
    k = k + 1
    return [b, e, f, g, k]

print(main(1, [5]))
"""


def used_at_once_test(weft):
    """`weft dis` marks the deferred calls whose value is needed before anything that could
    overlap with them (compiler/codegen.cpp, mark_used_at_once)."""
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "at_once.weft")
        with open(prog, "w") as f:
            f.write(USED_AT_ONCE_PROGRAM)
        code, out, err = run(weft, ["dis", prog])
        marked = sorted({int(m.group(1)) for m in re.finditer(r"\[(\d+)\] +CallDefer .*value used at once", out)})
        # line 6: used next; line 8: only arithmetic, indexing and len() before the use; line 11:
        # a call (print) first; line 13: a loop first; line 16: never used (returned in a list)
        check("dis: calls whose value is needed before anything that could overlap run at once",
              code == 0 and marked == [6, 8], f"marked lines {marked}\n" + out + err)
        code, out, err = run(weft, ["run", prog])
        check("the marked program runs", code == 0 and out == "10\n[2, 3, 4, 5, 10]\n", out + err)


def doc_index_test(weft):
    """examples/doc_index.weft over a small folder: plain, gzipped, binary and linked files."""
    example = os.path.join(HERE, "..", "..", "examples", "doc_index.weft")
    with tempfile.TemporaryDirectory() as d:
        root = os.path.join(d, "docs")
        os.makedirs(os.path.join(root, "alpha", "sub"))
        os.makedirs(os.path.join(root, "beta"))
        with open(os.path.join(root, "alpha", "README"), "w") as f:
            f.write("Zebra zebra\nthe quick zebra jumps\n")
        with gzip.open(os.path.join(root, "alpha", "sub", "changelog.gz"), "wt") as f:
            f.write("quick quick fix\n")
        with open(os.path.join(root, "beta", "notes.txt"), "w") as f:
            f.write("fix the zebra\n")
        with open(os.path.join(root, "beta", "logo.png"), "wb") as f:
            f.write(b"\x89PNG\x00\xff\xfe")
        os.symlink("../alpha/README", os.path.join(root, "beta", "README"))
        dbp = os.path.join(d, "index.db")
        code, out, err = run(weft, [f"--allow-read={root},{dbp}", f"--allow-write={dbp}", "run", example,
                                    root, dbp], timeout=60)
        ok = code == 0 and err == ""
        lines = out.splitlines()
        check("doc_index runs with read access to the folder and write access to the database", ok, out + err)
        if not ok:
            return
        check("doc_index summary", lines[0] == f"{root}: 3 files indexed, 2 skipped (links, unreadable, not UTF-8 text)"
              and lines[1].startswith("2 packages, ") and ", 4 lines, 12 words" in lines[1]
              and lines[2] == "top 10 terms:" and lines[3].split() == ["4", "zebra"]
              and lines[4].split() == ["3", "quick"] and lines[5].split() == ["2", "fix"]
              and lines[-1].startswith("elapsed ") and lines[-1].endswith(" files/s"), out)
        con = sqlite3.connect(dbp)
        files = con.execute("SELECT package, path, lines, words FROM files ORDER BY path").fetchall()
        check("doc_index files table (gz read transparently)",
              files == [("alpha", "alpha/README", 2, 6), ("alpha", "alpha/sub/changelog.gz", 1, 3),
                        ("beta", "beta/notes.txt", 1, 3)], repr(files))
        terms = con.execute("SELECT package, term, count FROM terms ORDER BY package, count DESC, term").fetchall()
        check("doc_index terms table", terms == [("alpha", "quick", 3), ("alpha", "zebra", 3), ("alpha", "fix", 1),
                                                 ("alpha", "jumps", 1), ("beta", "fix", 1), ("beta", "zebra", 1)],
              repr(terms))
        pk = con.execute("SELECT package, files, words FROM packages ORDER BY package").fetchall()
        check("doc_index packages table", pk == [("alpha", 2, 9), ("beta", 1, 3)], repr(pk))
        con.close()
        code, out, err = run(weft, [f"--allow-read={root},{dbp}", "run", example, root, dbp], timeout=60)
        check("doc_index without write access to the database fails at once with PermissionDenied",
              code == 1 and out == "" and "PermissionDenied" in err and "--allow-write" in err, out + err)


if __name__ == "__main__":
    sys.exit(main())
