#!/usr/bin/env python3
"""Tests of the `weft` command line: --help, --version, -e, check, dis, test, the REPL
(driven through a pipe), exit statuses and error formats. Usage: cli_test.py --weft PATH"""
import argparse
import os
import subprocess
import sys
import tempfile

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

    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
