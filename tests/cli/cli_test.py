#!/usr/bin/env python3
"""Tests of the `weft` command line: --help, --version, -e, check, dis, test, the REPL
(driven through a pipe), exit statuses and error formats, --trace-out, the progress bar (on a
pipe and on a pseudo-terminal), tracebacks across tasks and examples/doc_index.weft on a small
folder. Usage: cli_test.py --weft PATH"""
import argparse
import fcntl
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
import termios
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

    repl_tests(weft)
    stdin_program_tests(weft)
    output_and_exit_tests(weft)
    import_tests(weft)
    weft_test_tests(weft)
    observability_tests(weft)
    used_at_once_test(weft)
    doc_index_test(weft)
    memory_tests(weft)
    blocked_task_memory_tests(weft)
    signal_tests(weft)
    trace_collapse_tests(weft)
    traceback_tests(weft)
    lisp_tests(weft)
    lazy_library_tests(weft)

    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s)")
    return 1 if failures else 0


def lisp_tests(weft):
    """The Lisp surface on the command line (docs/language/lisp.md): .wlisp files, check, -e and
    stdin with --lisp, the Lisp REPL, tracebacks, and the observability flags."""
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "p.wlisp")
        with open(prog, "w") as f:
            f.write('(define (fetch-url u) (str "got " u))\n(println (fetch-url "a"))\n'
                    '(define (half n)\n  (/ n 0))\n(define (outer) (half 4))\n(outer)\n')
        code, out, err = run(weft, ["run", prog])
        check("weft run x.wlisp: output, then the traceback with file:line:col frames and exit 1",
              code == 1 and out == "got a\n" and f"{prog}:6:1 in <module>" in err and f"{prog}:5:17 in outer" in err
              and f"{prog}:4:3 in half" in err and err.strip().endswith("ZeroDivisionError: division by zero"), err)
        code, out, err = run(weft, [prog])
        check("weft x.wlisp is weft run x.wlisp", code == 1 and out == "got a\n", out + err)
        code, out, err = run(weft, ["check", prog])
        check("weft check x.wlisp compiles without running", code == 0 and out == "" and err == "", out + err)
        bad = os.path.join(d, "bad.wlisp")
        with open(bad, "w") as f:
            f.write('(define (fetch-url u) u)\n(println 1)\n\n\n(println (fetch-urll 2))\n')
        code, out, err = run(weft, ["check", bad])
        check("weft check x.wlisp: unbound symbol with position, caret and hint, exit 2",
              code == 2 and f"{bad}:5:11: unbound symbol 'fetch-urll' (did you mean 'fetch-url'?)" in err
              and "\n          ^" in err, err)
        code, out, err = run(weft, ["run", bad])
        check("a compile error runs nothing", code == 2 and out == "", out + err)
        unclosed = os.path.join(d, "open.wlisp")
        with open(unclosed, "w") as f:
            f.write('(println 1)\n\n\n(define (f x)\n  (let ((y x)\n    y)\n')
        code, out, err = run(weft, ["run", unclosed])
        check("an unclosed bracket is reported where its form opens",
              code == 2 and f"{unclosed}:4:1: '(' was never closed" in err, err)
        code, out, err = run(weft, ["--trace", "run", prog])
        check("--trace names .wlisp code", "[task main#1]" in err, err)
        sp = os.path.join(d, "spawns.wlisp")
        with open(sp, "w") as f:
            f.write('(define ch (make-channel 1))\n(spawn (lambda () (channel-send ch 7)))\n(println (channel-recv ch))\n')
        code, out, err = run(weft, ["--trace", "--stats", "run", sp])
        check("--trace and --stats work for .wlisp; a spawned task is created at its Lisp call",
              code == 0 and out == "7\n" and f"created at {sp}:2 in <module>" in err and "weft stats:" in err, err)
        trace = os.path.join(d, "t.json")
        code, out, err = run(weft, ["--trace-out", trace, "run", sp])
        check("--trace-out writes a trace for a .wlisp program", code == 0 and os.path.getsize(trace) > 0, err)
        code, out, err = run(weft, ["--trace-out", "x.wlisp", "run", sp])
        check("--trace-out refuses a .wlisp program as its file name", code == 2 and "--trace-out" in err, err)

    code, out, err = run(weft, ["--lisp", "-e", '(println (+ 1 2) args)', "a"])
    check("--lisp -e runs a Lisp snippet with args", code == 0 and out == '3 ("a")\n', out + err)
    code, out, err = run(weft, ["-e", '(prn "x" :k)', "--lisp"])
    check("-e CODE --lisp: the flag may follow the code", code == 0 and out == '"x" :k\n', out + err)
    code, out, err = run(weft, ["--lisp", "-"], stdin='(define xs (list 1 2))\n(println (length xs))\n')
    check("--lisp reads a program from stdin", code == 0 and out == "2\n", out + err)
    code, out, err = run(weft, ["--lisp", "-e", "(println (car 1))"])
    check("--lisp -e: compile errors are positioned in <string>",
          code == 2 and "<string>:1:11: unbound symbol 'car'" in err, err)

    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HOME=home, TERM="dumb")
        t = Terminal([weft, "--lisp"], env)
        banner = t.expect(">>> ")
        check("Lisp REPL banner", banner is not None and "Lisp" in banner, repr(banner))
        t.send("(define x 40)\r")
        t.expect(">>> ")
        t.send("(+ x 2)\r")
        check("Lisp REPL prints a value; define prints nothing", t.expect("42\r\n") is not None,
              repr(t.seen[-300:]))
        t.expect(">>> ")
        t.send('(list "a"\r')
        t.expect("... ")
        t.send(":k {:n 1})\r")
        check("Lisp REPL reads until brackets balance and prints readably",
              t.expect('("a" :k {:n 1})\r\n') is not None, repr(t.seen[-300:]))
        t.expect(">>> ")
        t.send("(car x)\r")
        got = t.expect(">>> ")
        check("Lisp REPL reports a compile error", got is not None and "unbound symbol 'car'" in got, repr(got))
        t.send("(/ x 0)\r")
        got = t.expect(">>> ")
        check("Lisp REPL reports a runtime error", got is not None and "ZeroDivisionError" in got, repr(got))
        t.send("(define (sq n) (* n n))\r")
        t.expect(">>> ")
        t.send("(sq x)\r")
        check("Lisp REPL survives errors and keeps definitions", t.expect("1600\r\n") is not None,
              repr(t.seen[-300:]))
        # As for the Weft REPL: the prompt is written before libedit takes the terminal, and a
        # Ctrl-D in between is lost, so wait for the prompt and a moment as a person would.
        t.expect(">>> ")
        time.sleep(0.3)
        t.send("\x04")
        check("Lisp REPL: Ctrl-D leaves with status 0", t.wait() == 0)


class Terminal:
    """A weft process on a pseudo-terminal of its own (its controlling terminal, so that Ctrl-C
    sends SIGINT as a real terminal does). Every wait is bounded."""

    def __init__(self, cmd, env=None):
        self.master, slave = pty.openpty()

        def take_terminal():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                  preexec_fn=take_terminal)
        os.close(slave)
        self.seen = b""  # everything read so far
        self.pending = b""  # read but not yet matched by expect()

    def read_some(self, timeout):
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal (EIO on Linux)
            return False
        self.seen += chunk
        self.pending += chunk
        return bool(chunk)

    def expect(self, text, timeout=15):
        """Waits (at most `timeout` s) for `text`; returns what came before it, or None."""
        deadline = time.monotonic() + timeout
        want = text.encode()
        while want not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not self.read_some(min(left, 0.1)):
                return None
        before, _, self.pending = self.pending.partition(want)
        return before.decode(errors="replace")

    def send(self, text):
        os.write(self.master, text.encode())

    def wait(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            self.read_some(0.05)
        if self.p.poll() is None:
            self.p.kill()
        code = self.p.wait(timeout=5)
        os.close(self.master)
        return code


def repl_tests(weft):
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HOME=home, TERM="dumb")
        _, version, _ = run(weft, ["--version"])
        t = Terminal([weft], env)
        banner = t.expect(">>> ")
        check("REPL banner names the version and commit of --version",
              banner is not None and version.strip().replace("weft ", "Weft ", 1) in banner, repr(banner))
        t.send("x = 40\r")
        t.expect(">>> ")
        t.send("x + 2\r")
        check("REPL echoes an expression's value", t.expect("42\r\n") is not None and t.expect(">>> ") is not None,
              repr(t.seen[-300:]))
        # An open bracket continues the statement; it runs when the bracket closes, and the
        # following lines are new statements (they were swallowed into the first).
        t.send("xs = [1,\r")
        t.expect("... ")
        t.send("2]\r")
        t.expect(">>> ")
        t.send("print(len(xs) * 10)\r")
        check("REPL runs a bracketed statement when the bracket closes",
              t.expect("20\r\n") is not None and t.expect(">>> ") is not None, repr(t.seen[-300:]))
        t.send("def f(n):\r    return n * 2\r\r")
        t.expect(">>> ")
        t.send("f(x)\r")
        check("REPL ends a block at an empty line", t.expect("80\r\n") is not None, repr(t.seen[-300:]))
        t.expect(">>> ")
        t.send("if x > 100: print('big')\r")
        t.expect("... ")
        t.send("else: print('small')\r\r")
        out = t.expect(">>> ")
        check("REPL: a one-line compound statement waits for its else", out is not None and "small" in out
              and "Error" not in out, repr(t.seen[-300:]))
        t.send("ifs = 3\r")
        t.expect(">>> ")
        t.send("ifs + 1\r")
        check("REPL: a statement starting like a keyword but not one runs at once", t.expect("4\r\n") is not None,
              repr(t.seen[-300:]))
        t.expect(">>> ")
        # Ctrl-C at the prompt drops the line typed so far, as Python does.
        t.send("undefined_thing")
        time.sleep(0.3)
        t.send("\x03")
        cleared = t.expect("KeyboardInterrupt") is not None and t.expect(">>> ") is not None
        t.send("'after'\r")
        after = t.expect(">>> ")
        check("REPL: Ctrl-C at the prompt clears the line",
              cleared and after is not None and "'after'\r\n'after'" in after and "Error" not in after,
              repr(t.seen[-400:]))
        # Ctrl-C while a statement runs cancels it: its finally block runs, then the prompt.
        t.send("try:\r    sleep(60)\rfinally:\r    print('cleanup ran')\r\r")
        time.sleep(0.5)
        start = time.monotonic()
        t.send("\x03")
        out = t.expect(">>> ", timeout=20)
        check("REPL: Ctrl-C cancels a running statement, its finally runs, the prompt returns",
              out is not None and "cleanup ran" in out and "KeyboardInterrupt" in out and time.monotonic() - start < 10,
              repr(t.seen[-400:]))
        t.send("'still here'\r")
        check("REPL goes on after a cancelled statement", t.expect("'still here'\r\n") is not None, repr(t.seen[-300:]))
        t.expect(">>> ")
        t.send("undefined_name\r")
        check("REPL reports an error and goes on", t.expect("undefined_name") is not None
              and t.expect(">>> ") is not None, repr(t.seen[-300:]))
        t.send("help()\r")
        out = t.expect(">>> ")
        check("REPL help()", out is not None and "Ctrl-D" in out and "exit()" in out, repr(out))
        t.send("exit(3)\r")
        code = t.wait()
        check("REPL exit(3) leaves with status 3", code == 3, str(code))
        hist = os.path.join(home, ".weft_history")
        check("REPL history written (through a temporary file, renamed: none left behind)",
              os.path.exists(hist) and "print(len(xs)" in open(hist).read().replace("\\040", " ")
              and sorted(os.listdir(home)) == [".weft_history"], repr(os.listdir(home)))

        t = Terminal([weft], env)
        t.expect(">>> ")
        # libedit writes the prompt before it puts the terminal in its own mode; a Ctrl-D that
        # arrives in between is an end-of-line for the old mode and lost (no person types that
        # fast), so the test waits a moment as a person would.
        time.sleep(0.3)
        t.send("\x04")
        check("REPL: Ctrl-D exits with status 0", t.wait() == 0)
        t = Terminal([weft], env)
        t.expect(">>> ")
        t.send("quit()\r")
        check("REPL: quit() exits with status 0", t.wait() == 0)
        with open(hist) as f:
            check("REPL history kept across sessions", "quit()" in f.read())


def stdin_program_tests(weft):
    # A program on stdin runs as a program (not line by line as a REPL would): no echo of
    # expression values, an error stops it with status 1, a syntax error is status 2.
    prog = "x = 40\nx + 2\nxs = [1,\n  2]\nprint(x + len(xs))\n"
    code, out, err = run(weft, [], stdin=prog)
    check("weft < prog runs it as a program", code == 0 and out == "42\n", repr(out) + err)
    code, out, err = run(weft, ["-"], stdin=prog)
    check("weft - runs stdin as a program", code == 0 and out == "42\n", repr(out) + err)
    code, out, err = run(weft, ["-", "a", "b"], stdin="import sys\nprint(args, sys.argv)\n")
    check("weft - ARGS: args and sys.argv", out == "['a', 'b'] ['-', 'a', 'b']\n", repr(out) + err)
    code, out, err = run(weft, [], stdin="print(1)\nraise ValueError('bad')\nprint(2)\n")
    check("a program on stdin stops at an error with status 1",
          code == 1 and out == "1\n" and "<stdin>:2" in err and "ValueError: bad" in err, repr(out) + err)
    code, out, err = run(weft, ["-"], stdin="print(1)\nprint(2\n")
    check("a program on stdin with a syntax error: status 2, nothing runs",
          code == 2 and out == "" and "<stdin>:2:" in err, repr(out) + err)
    with tempfile.TemporaryDirectory() as d:
        code, out, err = run(weft, [d])
        check("a directory as the program is an error (status 2)", code == 2 and "directory" in err and out == "",
              repr(out) + err)
        code, out, err = run(weft, ["check", d])
        check("weft check DIR: status 2", code == 2 and "directory" in err, err)
        code, out, err = run(weft, ["dis", d])
        check("weft dis DIR: status 2", code == 2 and "directory" in err and out == "", out + err)


def output_and_exit_tests(weft):
    # On a pipe, output is block-buffered: nothing arrives while the program sleeps...
    p = subprocess.Popen([weft, "-e", "print('early')\nsleep(1.5)\nprint('late')"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    ready, _, _ = select.select([p.stdout], [], [], 0.8)
    early = ready and p.poll() is None
    out, _ = p.communicate(timeout=30)
    check("stdout on a pipe is block-buffered (and flushed at exit)", not early and out == b"early\nlate\n", repr(out))
    # ... unless print(flush=True) asks.
    p = subprocess.Popen([weft, "-e", "print('now', flush=True)\nsleep(30)"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    ready, _, _ = select.select([p.stdout], [], [], 15)
    got = p.stdout.read1(100) if ready else b""
    p.kill()
    p.communicate(timeout=10)
    check("print(flush=True) writes through at once", got == b"now\n", repr(got))
    # On a terminal, line-buffered: a line shows while the program still runs.
    t = Terminal([weft, "-e", "print('line one')\nsleep(30)"])
    before = t.expect("line one", timeout=15)
    alive = t.p.poll() is None
    t.p.kill()
    t.wait()
    check("stdout on a terminal is line-buffered", before is not None and alive, repr(t.seen))
    # input() flushes first: the prompt is out before the program waits.
    p = subprocess.Popen([weft, "-e", "print('question?')\nx = input()\nprint('got', x)"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([p.stdout], [], [], 15)
    got = p.stdout.read1(100) if ready else b""
    out, _ = p.communicate(b"yes\n", timeout=30)
    check("stdout is flushed before reading stdin", got == b"question?\n" and out == b"got yes\n", repr(got + out))
    # --trace: the program's lines and the trace's keep their order on one stream.
    p = subprocess.run([weft, "--trace", "-e", "print('one')\nsleep(0.01)\nprint('two')"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    lines = p.stdout.splitlines()
    blocked = [i for i, l in enumerate(lines) if "main" in l and "blocked on sleep" in l]
    check("--trace: output interleaves with the trace",
          blocked and lines.index("one") < blocked[0] < lines.index("two"), p.stdout)
    # The traceback comes after the output printed before the error (stdout and stderr on one pipe).
    p = subprocess.run([weft, "-e", "print('before')\nraise ValueError('x')"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    check("stdout is flushed before a traceback", p.stdout.startswith("before\nTraceback"), p.stdout)
    code, out, err = run(weft, ["-e", "import sys\nprint('e', file=sys.stderr)\nprint('o', file=sys.stdout)"])
    check("print(file=sys.stderr / sys.stdout)", out == "o\n" and err == "e\n", repr(out) + repr(err))

    # exit(code) runs cleanup and sets the status; no traceback.
    prog = "try:\n    print('working')\n    exit(3)\nfinally:\n    print('cleanup')\nprint('not reached')\n"
    code, out, err = run(weft, ["-e", prog])
    check("exit(3): finally runs, status 3, no traceback", code == 3 and out == "working\ncleanup\n" and err == "",
          repr(out) + err)
    code, out, err = run(weft, ["-e", "import sys\nsys.exit('fatal: no input')"])
    check("sys.exit(message): the message on stderr, status 1", code == 1 and err == "fatal: no input\n", err)
    code, out, err = run(weft, ["-e", "exit()"])
    check("exit(): status 0", code == 0 and err == "", err)
    prog = ("def worker():\n    sleep(0.01)\n    exit(4)\nt = spawn worker()\nprint('main goes on')\n"
            "try:\n    t.result()\nfinally:\n    print('joined')\nprint('not reached')\n")
    code, out, err = run(weft, ["-e", prog])
    check("exit(4) in a task: raised where the task is joined, status 4",
          code == 4 and out == "main goes on\njoined\n" and err == "", repr(out) + err)

    # --trace-out problems are reported before the program runs (status 2, nothing printed).
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "prog.weft")
        with open(prog, "w") as f:
            f.write("print('ran')\n")
        for args, what in ((["--trace-out", os.path.join(d, "no", "such", "dir", "t.json"), prog], "unwritable path"),
                           (["--trace-out", d, prog], "a directory"),
                           (["--trace-out", prog], "the program taken for the file name"),
                           ([prog, "--trace-out"], None)):
            code, out, err = run(weft, args)
            if what is None:  # after the program, flags belong to the program
                check("--trace-out after the program is the program's argument", code == 0 and out == "ran\n", out + err)
                continue
            check(f"--trace-out error before the run: {what}", code == 2 and out == "" and "--trace-out" in err,
                  repr(out) + err)
        with open(prog) as f:
            check("--trace-out never overwrites the program", f.read() == "print('ran')\n")
        code, out, err = run(weft, ["--trace-out"])
        check("--trace-out without a file name", code == 2 and "--trace-out needs a file name" in err, err)


def import_tests(weft):
    with tempfile.TemporaryDirectory() as d:
        def write(name, text):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
            return os.path.join(d, name)

        write("util.weft", "def f():\n    return 1\n")
        write("broken.weft", "def g(:\n    pass\n")
        main = write("main.weft", "print('started')\nimport util\n")
        hint = 'import "./util.weft" as util'
        code, out, err = run(weft, ["check", main])
        check("check: import of an unknown module is status 2, with the file-import hint",
              code == 2 and f"{main}:2:" in err and "no module named 'util'" in err and hint in err, err)
        code, out, err = run(weft, [main])
        check("run: import of an unknown module is status 2, with the hint", code == 2 and hint in err, out + err)
        main = write("main2.weft", "def later():\n    import \"./broken.weft\" as b\n")
        code, out, err = run(weft, ["check", main])
        check("check follows imports: a syntax error in an imported file is status 2 at that file",
              code == 2 and "broken.weft:1:" in err, err)
        main = write("main3.weft", "print('started')\nimport \"./broken.weft\" as b\n")
        code, out, err = run(weft, [main])
        check("run: an import with a syntax error is status 2", code == 2 and "broken.weft:1:" in err, out + err)
        main = write("main4.weft", "import \"./missing.weft\" as m\n")
        code, out, err = run(weft, ["check", main])
        check("check: import of a missing file is status 2", code == 2 and "missing.weft" in err, err)
        code, out, err = run(weft, [main])
        check("run: import of a missing file is status 2", code == 2 and "missing.weft" in err, err)
        main = write("main5.weft", "import \"./util.weft\" as util\nimport json\nprint(util.f())\n")
        code, out, err = run(weft, ["check", main])
        check("check: good imports pass", code == 0 and out == "", out + err)
        main = write("main6.weft", "try:\n    import \"./missing.weft\" as m\nexcept IOError:\n    print('no')\n")
        code, out, err = run(weft, [main])
        check("run: a failed import can still be caught", code == 0 and out == "no\n", out + err)


def weft_test_tests(weft):
    code, out, err = run(weft, ["test", "--help"])
    check("weft test --help", code == 0 and "-k PATTERN" in out and "--timeout" in out, out + err)
    sample = os.path.join(HERE, "sample_test.weft")
    code, out, err = run(weft, ["test", "-k", "add", sample])
    check("weft test -k selects by name", code == 0 and "test_add" in out and "test_fails" not in out
          and "1 passed, 0 failed, 2 deselected" in out, out + err)
    code, out, err = run(weft, ["test", "-k", "no_such_test", sample])
    check("weft test: status 5 when no test was collected", code == 5 and "no tests collected" in out, out + err)
    with tempfile.TemporaryDirectory() as d:
        code, out, err = run(weft, ["test", d])
        check("weft test on a folder without tests: status 5", code == 5, out + err)
        with open(os.path.join(d, "slow_test.weft"), "w") as f:
            f.write("def test_quick():\n    assert 1 + 1 == 2\n\n"
                    "def test_hangs():\n    try:\n        sleep(60)\n    finally:\n        print('cleanup ran')\n\n"
                    "def test_values():\n    a = [1, 2]\n    assert len(a) + 1 == 2 * len(a) + 5\n")
        start = time.monotonic()
        code, out, err = run(weft, ["test", "--timeout", "300ms", d], timeout=60)
        took = time.monotonic() - start
        check("weft test: per-test time on each line", re.search(r"PASS .*::test_quick \(\d+\.\d+ ms\)", out), out)
        check("weft test: a test over --timeout fails with TimeoutError, its finally runs, the run goes on",
              code == 1 and re.search(r"FAIL .*::test_hangs", out) and "cleanup ran" in out and "TimeoutError" in err
              and "test_values" in out and took < 30, out + err)
        check("weft test: a failed assert a == b shows both values", "AssertionError: assert 3 == 9" in err, err)
    code, out, err = run(weft, ["test", "--bogus"])
    check("weft test: unknown option is status 2", code == 2 and "--bogus" in err, err)


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
        # Actors in the observability: --stats counts their messages, dead letters and restarts,
        # --trace names the task that handles an actor's messages after the actor's type, and
        # --trace-out gives it a track.
        aprog = os.path.join(d, "actors.weft")
        with open(aprog, "w") as f:
            f.write("actor Counter:\n    n: int = 0\n    def add(self, k):\n        self.n += k\n"
                    "        return self.n\n    def boom(self):\n        raise ValueError('x')\n"
                    "c = Counter.spawn()\nfor i in range(5):\n    c.tell('add', 1)\nprint(c.add(1))\n"
                    "sup = supervise([child(Counter, id='c')])\nr = sup.ref('c')\n"
                    "try:\n    r.boom()\nexcept ValueError:\n    pass\nprint(r.add(2))\n"
                    "c.stop()\nc.tell('add', 1)\n")
        code, out, err = run(weft, ["--stats", "run", aprog])
        check("--stats counts actors' messages, dead letters and restarts",
              code == 0 and out == "6\n2\n" and
              re.search(r"actors:  4 spawned, \d+ messages handled, [1-9]\d* dead letters \(0 dropped by full "
                        r"mailboxes\), 1 restarts, peak mailbox [1-9]", err) is not None, err)
        atrace = os.path.join(d, "actors.json")
        code, out, err = run(weft, ["--trace", f"--trace-out={atrace}", "run", aprog])
        check("--trace and --trace-out show the tasks that handle actors' messages",
              code == 0 and re.search(r"\[task Counter#\d+\] started \(actor\)", err) is not None
              and os.path.exists(atrace) and any(e.get("ph") == "X" and e.get("name", "").startswith("Counter#")
                                                 for e in json.load(open(atrace))["traceEvents"]),
              err[-800:])
        code, out, err = run(weft, ["--trace-out", os.path.join(d, "no", "such", "dir.json"), "-e", "print(1)"])
        check("--trace-out to an unwritable path fails with a message, before the run",
              code == 2 and out == "" and "cannot write" in err,
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


TRACEBACK_PROGRAM = """\
def div(a, b):
    x = a / b
    return x

def outer(n):
    total = div(n, 0) + 1
    return total

print(outer(4))
"""


def traceback_tests(weft):
    """Runtime tracebacks show each frame's source line and carets under the expression that
    failed (CPython 3.11's style; compiler/codegen.cpp Chunk::cols, vm/task_context.cpp
    source_excerpt), while an error's `trace` keeps the plain "file:line in function" lines."""
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "tb.weft")
        with open(prog, "w") as f:
            f.write(TRACEBACK_PROGRAM)
        code, out, err = run(weft, ["run", prog])
        want = (f"Traceback (most recent call last):\n"
                f"  {prog}:9 in <module>\n"
                f"    print(outer(4))\n"
                f"          ^^^^^^^^\n"
                f"  {prog}:6 in outer\n"
                f"    total = div(n, 0) + 1\n"
                f"            ^^^^^^^^^\n"
                f"  {prog}:2 in div\n"
                f"    x = a / b\n"
                f"        ^^^^^\n"
                f"ZeroDivisionError: division by zero\n")
        check("traceback: source line and carets under the failing expression", code == 1 and err == want, err)

        # A statement that is the whole failing expression gets its line and no carets; a frame
        # line's trace value stays plain.
        prog = os.path.join(d, "whole.weft")
        with open(prog, "w") as f:
            f.write("def f(d):\n    return d['k']\ntry:\n    f({})\nexcept KeyError as e:\n"
                    "    print(e.trace)\nf({})\n")
        code, out, err = run(weft, ["run", prog])
        check("traceback: e.trace holds plain frame lines",
              out == f"['{prog}:4 in <module>', '{prog}:2 in f']\n", out)
        check("traceback: no carets under a whole line",
              code == 1 and f"  {prog}:7 in <module>\n    f({{}})\n  {prog}:2 in f\n" in err
              and "    return d['k']\n           ^^^^^^\nKeyError" in err, err)


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


def run_limited(weft, args, limit_bytes, timeout=60):
    """Runs weft with its address space limited to `limit_bytes` (RLIMIT_AS), so that
    allocations fail as they would on a machine that is out of memory."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    p = subprocess.run([weft] + args, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return p.returncode, p.stdout, p.stderr


def process_alive(pid):
    """True while `pid` runs (a zombie counts as gone: it has ended and waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid, timeout=5.0):
    end = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    return not process_alive(pid)


def start_program(weft, d, name, source, flags=()):
    """Starts `weft run` on `source` with stdout/stderr piped; waits (at most 10 s) for its
    first line, `ready` and optional pids, which the program prints with flush=True. Returns
    (process, pids)."""
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(source)
    p = subprocess.Popen([weft, *flags, "run", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        p.kill()
        return p, None
    return p, [int(x) for x in line.split()[1:]]


def finish(p, timeout=10):
    """The rest of stdout and stderr and the status (None if it hung and was killed). Bounded
    even when a leftover child keeps the pipes open."""
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a child of weft still holds the pipes
            out, err = "", ""
        return None, out, err + "\n(hung: killed)"


def trace_collapse_tests(weft):
    """A runaway recursion through deferred returns collapses its task lines as CPython collapses
    repeated lines; an ErrorGroup prints each error with its own trace."""
    # A smaller depth than the default keeps the test quick (it is about the printing).
    code, out, err = run(weft, ["--max-depth", "2000", "-e", "def f(n):\n    return f(n + 1)\nf(0)\n"], timeout=120)
    lines = err.splitlines()
    task_lines = [l for l in lines if l.startswith("  task f#")]
    check("runaway recursion through `return f(n+1)`: task lines collapsed",
          code == 1 and len(task_lines) == 3 and len(lines) < 40 and "more times]" in err
          and lines[-1].startswith("RecursionError"), f"status {code}, {len(lines)} lines\n{err[:3000]}")

    prog = ("def fail(x):\n"
            "    raise ValueError('bad ' + str(x))\n"
            "def main():\n"
            "    a = fail(1)\n"
            "    b = fail(2)\n"
            "    print('end')\n"
            "main()\n")
    code, out, err = run(weft, ["-e", prog])
    check("an ErrorGroup of unused deferred calls: where the function ended, each error's own trace",
          code == 1 and "<string>:6 in main" in err and "<string>:3 in main" not in err
          and "      deferred call to fail, started at <string>:4 in main:" in err
          and "      deferred call to fail, started at <string>:5 in main:" in err
          and err.count("<string>:2 in fail") == 2, err)


def signal_tests(weft):
    """SIGINT/SIGTERM cancel the running program: `finally` and `with` exits run, processes
    started by `proc` are terminated and reaped, the status is 130/143 with one stderr line; a
    second SIGINT exits at once; children die with Weft even when it is killed outright."""
    import signal
    with tempfile.TemporaryDirectory() as d:
        prog = ("import proc\n"
                "p = proc.spawn_process(['sleep', '100'])\n"
                "def worker():\n"
                "    try:\n"
                "        sleep(100)\n"
                "    finally:\n"
                "        print('worker cleanup')\n"
                "t = spawn worker()\n"
                "with proc.spawn_process(['sleep', '100']) as q:\n"
                "    print('ready', p.pid, q.pid, flush=True)\n"
                "    try:\n"
                "        sleep(100)\n"
                "    finally:\n"
                "        print('main cleanup')\n")
        p, pids = start_program(weft, d, "sigint.weft", prog, ["--allow-run=sleep"])
        if pids is None:
            check("SIGINT program starts", False, finish(p)[2])
        else:
            p.send_signal(signal.SIGINT)
            code, out, err = finish(p)
            lines = err.strip().splitlines()
            check("SIGINT: finally blocks of the main task and its tasks run, status 130, one line on stderr",
                  code == 130 and sorted(out.splitlines()) == ["main cleanup", "worker cleanup"]
                  and len(lines) == 1 and lines[0].startswith("weft: stopped by SIGINT"),
                  f"status {code}\n{out}{err}")
            check("SIGINT: processes started by proc are terminated and reaped",
                  all(wait_gone(pid) for pid in pids), f"pids {pids}")

        prog = ("try:\n"
                "    try:\n"
                "        print('ready', flush=True)\n"
                "        n = 0\n"
                "        while True:\n"
                "            n += 1\n"
                "    except:\n"
                "        print('a bare except caught it')\n"
                "except KeyboardInterrupt as e:\n"
                "    print('KeyboardInterrupt caught by name')\n"
                "finally:\n"
                "    print('finally')\n")
        p, pids = start_program(weft, d, "loop.weft", prog)
        if pids is not None:
            time.sleep(0.1)
            p.send_signal(signal.SIGINT)
        code, out, err = finish(p)
        check("SIGINT stops a CPU loop as KeyboardInterrupt, which a bare except does not catch",
              code == 130 and out == "KeyboardInterrupt caught by name\nfinally\n", f"status {code}\n{out}{err}")

        prog = ("try:\n"
                "    print('ready', flush=True)\n"
                "    sleep(100)\n"
                "except Cancelled:\n"
                "    print('Cancelled')\n"
                "    raise\n")
        p, pids = start_program(weft, d, "term.weft", prog)
        if pids is not None:
            p.send_signal(signal.SIGTERM)
        code, out, err = finish(p)
        check("SIGTERM cancels the main task (Cancelled), status 143, one line on stderr",
              code == 143 and out == "Cancelled\n" and err.strip().startswith("weft: stopped by SIGTERM")
              and len(err.strip().splitlines()) == 1, f"status {code}\n{out}{err}")

        prog = ("import proc\n"
                "p = proc.spawn_process(['sleep', '100'])\n"
                "try:\n"
                "    print('ready', p.pid, flush=True)\n"
                "    sleep(100)\n"
                "finally:\n"
                "    print('slow cleanup', flush=True)\n"
                "    with shield:\n"
                "        sleep(100)\n")
        p, pids = start_program(weft, d, "twice.weft", prog, ["--allow-run=sleep"])
        if pids is None:
            check("second SIGINT program starts", False, finish(p)[2])
        else:
            p.send_signal(signal.SIGINT)
            ready, _, _ = select.select([p.stdout], [], [], 10)
            line = p.stdout.readline() if ready else ""
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            code, out, err = finish(p)
            check("a second SIGINT during cleanup exits at once (130) and kills the children",
                  line == "slow cleanup\n" and code == 130 and time.monotonic() - t0 < 5
                  and "second SIGINT" in err and wait_gone(pids[0]), f"status {code}\n{line}{out}{err}")

        prog = ("import proc\n"
                "p = proc.spawn_process(['sleep', '100'])\n"
                "print('ready', p.pid, flush=True)\n"
                "sleep(100)\n")
        p, pids = start_program(weft, d, "killed.weft", prog, ["--allow-run=sleep"])
        if pids is None:
            check("SIGKILL program starts", False, finish(p)[2])
        else:
            p.send_signal(signal.SIGKILL)
            finish(p)
            check("children die when weft is killed outright (SIGKILL)", wait_gone(pids[0]), f"pid {pids[0]}")


def memory_tests(weft):
    """Out of memory is a MemoryError (or one fatal line), never a silent abort: mimalloc's
    operator new used to abort with an empty stderr, and an unbounded channel grew until the
    OOM killer struck. RLIMIT_AS makes allocations fail without filling the machine."""
    gib = 1 << 30
    code, out, err = run_limited(weft, ["-e", "print(1)"], gib)
    if code != 0:  # sanitizer builds reserve terabytes of shadow memory: they cannot start so
        print(f"skip  memory tests (weft does not start with a 1 GiB address space: {err.strip()[:100]})")
        return
    prog = ("x = 'a' * (1 << 29)\n"
            "try:\n"
            "    y = 'b' * (1 << 29)\n"
            "    z = 'c' * (1 << 29)\n"
            "    print('no error')\n"
            "except MemoryError as e:\n"
            "    print('MemoryError:', e)\n"
            "print(len(x))\n")
    code, out, err = run_limited(weft, ["-e", prog], gib)
    check("an allocation the allocator refuses raises MemoryError",
          code == 0 and out == f"MemoryError: out of memory\n{1 << 29}\n", f"status {code}\n{out}{err}")

    code, out, err = run_limited(weft, ["-e", "l = []\nwhile True:\n    l.append('item' * 64)\n"], gib)
    lines = err.strip().splitlines()
    check("uncaught MemoryError: traceback, last line, exit 1",
          code == 1 and "Traceback" in err and lines[-1] == "MemoryError: out of memory", f"status {code}\n{err[-500:]}")

    prog = ("ch = channel(unbounded=True)\n"
            "n = 0\n"
            "try:\n"
            "    while True:\n"
            "        ch.send('x' * 4000 + str(n))\n"
            "        n += 1\n"
            "except MemoryError as e:\n"
            "    print(str(e).split(' holds')[0], n > 1024)\n")
    code, out, err = run_limited(weft, ["-e", prog], gib)
    check("an unbounded channel filling memory raises MemoryError in its sender",
          code == 0 and out == "out of memory: an unbounded channel True\n", f"status {code}\n{out}{err[-500:]}")


def blocked_task_memory_tests(weft):
    """Resident memory of many blocked Weft tasks stays small: the peak (VmHWM) of N tasks
    blocked in sleep under `concurrent:` is checked against a generous bound. An interpreter's
    8,000-frame array used to be written in full when it was made (up to 320 KiB a task), and
    past ~30,000 tasks the interpreters' mappings ran into Linux's limit of 65,530 per process
    (MemoryError). Now about 12 KiB a task. No timing is measured."""
    code, _, err = run_limited(weft, ["-e", "print(1)"], 1 << 30)
    if code != 0:  # sanitizer builds: their allocators and shadow memory dwarf the figure
        print("skip  blocked-task memory tests (sanitizer build)")
        return
    script = os.path.join(os.path.dirname(HERE), "..", "bench", "concurrency", "blocked_tasks.weft")
    for n, bound_mib in [(10000, 200), (40000, 1000)]:
        code, out, err = run(weft, ["--allow-read=/proc", "run", script, str(n)], timeout=120)
        m = re.search(r"(\d+) KiB peak", out)
        peak = int(m.group(1)) if m else -1
        check(f"{n} blocked tasks peak below {bound_mib} MiB resident",
              code == 0 and out.endswith("True\n") and 0 < peak < bound_mib * 1024, f"status {code}\n{out}{err[-500:]}")


def lazy_library_tests(weft):
    """libcurl and libpq are loaded when a program first uses http or db.postgres
    (stdlib/lazy_libs.h), not at every start: a program that imports neither has neither
    mapped; one that imports http has libcurl and works; libpq is still not loaded."""
    probe = ("import fs\n"
             "def loaded():\n"
             "    maps = fs.read_file('/proc/self/maps')\n"
             "    return ('libcurl' in maps, 'libpq' in maps)\n")
    code, out, err = run(weft, ["--allow-read=/proc", "-e", probe + "print(loaded())"])
    check("a program without http or postgres loads neither libcurl nor libpq",
          code == 0 and out == "(False, False)\n", f"status {code}\n{out}{err[-500:]}")
    code, out, err = run(weft, ["--allow-read=/proc", "-e", "import http\n" + probe +
                                "try:\n    http.get('no url')\nexcept ValueError as e:\n    print(str(e))\n"
                                "print(loaded())"])
    check("importing http loads libcurl on demand, and it works",
          code == 0 and out.endswith("(True, False)\n") and "invalid URL 'no url'" in out,
          f"status {code}\n{out}{err[-500:]}")


if __name__ == "__main__":
    sys.exit(main())
