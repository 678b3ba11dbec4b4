#!/usr/bin/env python3
"""Runner for the Weft language tests and the runnable examples of the user guide.

Language tests (Wren/clox style) are `*.weft` files whose comments state what must happen:

    print(1 + 2)            # expect: 3
    # expect:               (an empty output line)
    # expect error: message             compile error at this comment's line: exit 2, and a
                                        stderr line contains both `:LINE:` and `message`
    # expect error line N: message      the same with an explicit line
    # expect runtime error: Kind: msg   uncaught error: exit 1, the last stderr line contains it
    # args: a b c                       script arguments   (weft [flags] run FILE [args])
    # flags: --workers 1                weft flags placed before `run`
    # stdin: text                       one line of standard input (repeatable)
    # timeout: 240                      this test's time bound in seconds, when longer than the
                                        runner's --timeout (stress tests under the sanitizers)
    # order-dependent                   output depends on calls running concurrently (e.g. it
                                        shows where a deferred call's error surfaces): skipped
                                        when the runner is given --extra-args=--sequential

`*.wlisp` tests (the Lisp surface) use the same comments with `;` for `#`.
stdout must equal the `# expect:` lines exactly, in order.  Directories named `lib` hold helper
modules, not tests, and are skipped; so are directories holding a `NEEDS_SERVER` file unless
given as a test directory themselves (their driver starts the server: see that file).  `DIR/XFAIL` lists expected failures (`path  # reason`,
paths relative to DIR): they still run; a failure counts as xfail, a pass (XPASS) is an error.

Docs mode (`--docs DIR`): every ```weft block in DIR/**/*.md immediately followed (blank lines
allowed) by an ```output block is run and its stdout compared exactly; a ```weft block with no
output block is only compiled (`weft check`, exit 0).  A ```weft-error block followed by an
```output block must fail (exit 1 or 2) with stderr containing the output text.  The fence
line may give the program's arguments and weft's flags after the language, ```weft
args="Ada Grace" flags="--allow-env=HOME" (shell quoting), for an example that shows a command
line with arguments or capabilities.

Standard library only; exit status 1 when anything failed.
"""

import argparse
import concurrent.futures
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

def comment_patterns(prefix):
    """The expectation comments of a test whose comments start with `prefix` (`#` for .weft,
    `;` for .wlisp, where `;;` works too)."""
    c = re.escape(prefix) + "+" if prefix == ";" else re.escape(prefix)
    return {
        "expect": re.compile(c + r"\s*expect:(?: (.*))?$"),
        "error": re.compile(c + r"\s*expect error(?: line (\d+))?:\s?(.*)$"),
        "runtime": re.compile(c + r"\s*expect runtime error:\s?(.*)$"),
        "args": re.compile(c + r"\s*args:(.*)$"),
        "flags": re.compile(c + r"\s*flags:(.*)$"),
        "stdin": re.compile(c + r"\s*stdin:(?: (.*))?$"),
        "order": re.compile(c + r"\s*order-dependent\b"),
        "timeout": re.compile(c + r"\s*timeout:\s*(\d+(?:\.\d+)?)\s*$"),
    }


PATTERNS = {"#": comment_patterns("#"), ";": comment_patterns(";")}
TEST_EXTENSIONS = (".weft", ".wlisp")


class Result:
    """Outcome of one test: `ok` plus a human-readable explanation when not ok."""

    def __init__(self, name, ok, detail=""):
        self.name = name
        self.ok = ok
        self.detail = detail


def run_process(cmd, stdin_text, timeout, cwd=None):
    """Runs cmd; returns (returncode, stdout, stderr) or None on timeout."""
    try:
        proc = subprocess.run(
            cmd,
            input=stdin_text.encode("utf-8"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        return None
    except OSError as e:
        return (127, "", f"cannot run {cmd[0]}: {e}")
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", errors="replace"),
        proc.stderr.decode("utf-8", errors="replace"),
    )


def output_lines(text):
    """Splits stdout into lines; a final newline does not make an extra empty line."""
    if text == "":
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def diff(expected, actual, limit=30):
    lines = list(
        difflib.unified_diff(expected, actual, "expected", "actual", lineterm="", n=2)
    )
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)"]
    return "\n".join("    " + l for l in lines)


def tail(text, n=12):
    lines = text.rstrip("\n").split("\n")
    if len(lines) > n:
        lines = ["..."] + lines[-n:]
    return "\n".join("    | " + l for l in lines)


def parse_test(path):
    """Reads the expectations of one test file."""
    spec = {
        "expect": [],
        "errors": [],  # (line, message)
        "runtime": [],
        "args": [],
        "flags": [],
        "stdin": [],
        "order_dependent": False,
        "timeout": None,
    }
    prefix = ";" if path.endswith(".wlisp") else "#"
    pat = PATTERNS[prefix]
    EXPECT_RE, EXPECT_ERROR_RE, EXPECT_RUNTIME_RE = pat["expect"], pat["error"], pat["runtime"]
    ARGS_RE, FLAGS_RE, STDIN_RE, ORDER_RE = pat["args"], pat["flags"], pat["stdin"], pat["order"]
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if prefix not in line:
                continue
            m = EXPECT_RE.search(line)
            if m:
                spec["expect"].append(m.group(1) or "")
                continue
            m = EXPECT_ERROR_RE.search(line)
            if m:
                at = int(m.group(1)) if m.group(1) else lineno
                spec["errors"].append((at, m.group(2)))
                continue
            m = EXPECT_RUNTIME_RE.search(line)
            if m:
                spec["runtime"].append(m.group(1))
                continue
            if ORDER_RE.search(line):
                spec["order_dependent"] = True
                continue
            m = pat["timeout"].search(line)
            if m:
                spec["timeout"] = float(m.group(1))
                continue
            m = ARGS_RE.search(line)
            if m:
                spec["args"] += shlex.split(m.group(1))
                continue
            m = FLAGS_RE.search(line)
            if m:
                spec["flags"] += shlex.split(m.group(1))
                continue
            m = STDIN_RE.search(line)
            if m:
                spec["stdin"].append(m.group(1) or "")
    return spec


def check_test(weft, path, name, extra_flags, timeout):
    spec = parse_test(path)
    if spec["order_dependent"] and "--sequential" in extra_flags:
        return Result(name, True, "skipped (order-dependent)")
    cmd = [weft] + extra_flags + spec["flags"] + ["run", path] + spec["args"]
    stdin_text = "".join(l + "\n" for l in spec["stdin"])
    if spec["timeout"]:
        timeout = max(timeout, spec["timeout"])  # a stress test's own, longer bound
    res = run_process(cmd, stdin_text, timeout)
    if res is None:
        return Result(name, False, f"timed out after {timeout:g} s")
    code, out, err = res
    problems = []
    if code < 0 or code > 2:
        problems.append(f"crashed or bad exit status {code}")
    if spec["errors"]:
        if code != 2:
            problems.append(f"expected compile error (exit 2), got exit {code}")
        # The message must be on the `path:LINE:COL: message` line itself: the echoed source
        # line contains the `# expect error:` comment, so a plain search would always succeed.
        err_lines = err.split("\n")
        for line, msg in spec["errors"]:
            located = [l for l in err_lines if f":{line}:" in l]
            if not located:
                problems.append(f"stderr lacks an error at line {line} (':{line}:')")
            elif not any(msg in l for l in located):
                problems.append(f"error at line {line} lacks message {msg!r}")
    elif spec["runtime"]:
        if code != 1:
            problems.append(f"expected runtime error (exit 1), got exit {code}")
        # The kind and message are the last line of the traceback.
        last = next((l for l in reversed(err.split("\n")) if l.strip()), "")
        for msg in spec["runtime"]:
            if msg not in last:
                problems.append(f"last stderr line lacks runtime error {msg!r}")
    elif code != 0:
        problems.append(f"exit status {code}, expected 0")
    actual = output_lines(out)
    if actual != spec["expect"]:
        problems.append("stdout differs:\n" + diff(spec["expect"], actual))
    if problems:
        detail = "\n  ".join(problems)
        if err and (code != 0 or spec["errors"] or spec["runtime"]):
            detail += "\n  stderr:\n" + tail(err)
        return Result(name, False, detail)
    return Result(name, True)


def find_tests(root):
    """All *.weft files under root except those inside `lib` directories and directories below
    root holding a NEEDS_SERVER file (their tests need a server a driver starts, and run only
    when given as root themselves), sorted."""
    found = []
    if os.path.isfile(root):
        return [root]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "lib" and not d.startswith(".")
                             and not os.path.exists(os.path.join(dirpath, d, "NEEDS_SERVER")))
        for fn in sorted(filenames):
            if fn.endswith(TEST_EXTENSIONS):
                found.append(os.path.join(dirpath, fn))
    return found


def read_xfail(root):
    """Parses ROOT/XFAIL: `relative/path.weft  # reason` per line."""
    xfail = {}
    path = os.path.join(root, "XFAIL")
    if not os.path.isfile(path):
        return xfail
    with open(path, encoding="utf-8") as f:
        for line in f:
            entry, _, reason = line.partition("#")
            entry = entry.strip()
            if entry:
                xfail[os.path.normpath(entry)] = reason.strip()
    return xfail


# ---------------------------------------------------------------------------- docs mode

FENCE_RE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w-]*)(.*)$")
FENCE_OPT_RE = re.compile(r"\b(args|flags)=(\"[^\"]*\"|'[^']*'|\S+)")


def extract_blocks(md_path):
    """Returns [(lang, code, start_line, output_or_None, opts)] for the weft/weft-error blocks,
    opts a dict {"args": [...], "flags": [...]} from the fence line.

    The output is the text of an ```output block that follows the code block with only blank
    lines in between."""
    with open(md_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    items = []  # "blank", "text" or ("fence", lang, body, line, opts)
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            items.append("blank" if not lines[i].strip() else "text")
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3)
        # args="a 'b c'": the quoted value is a shell-quoted list (here two arguments).
        opts = {"args": [], "flags": []}
        for om in FENCE_OPT_RE.finditer(m.group(4)):
            value = om.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            opts[om.group(1)] = shlex.split(value)
        start = i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line)
            i += 1
        i += 1  # the closing fence
        items.append(("fence", lang, "\n".join(body) + "\n", start, opts))
    result = []
    for idx, item in enumerate(items):
        if not isinstance(item, tuple) or item[1] not in ("weft", "weft-error", "wlisp", "wlisp-error"):
            continue
        output = None
        j = idx + 1
        while j < len(items) and items[j] == "blank":
            j += 1
        if j < len(items) and isinstance(items[j], tuple) and items[j][1] == "output":
            output = items[j][2]
        result.append((item[1], item[2], item[3], output, item[4]))
    return result


def check_doc_block(weft, tmpdir, md_path, idx, lang, code, line, output, opts, extra_flags,
                    timeout):
    name = f"{md_path}:{line}"
    base = re.sub(r"[^A-Za-z0-9]+", "_", os.path.splitext(md_path)[0]).strip("_")
    # ```wlisp blocks are Lisp programs (docs/language/lisp.md): run from a .wlisp file.
    ext = ".wlisp" if lang.startswith("wlisp") else ".weft"
    prog = os.path.join(tmpdir, f"{base}_{idx}_line{line}{ext}")
    with open(prog, "w", encoding="utf-8") as f:
        f.write(code)
    if lang in ("weft", "wlisp") and output is None:
        cmd = [weft] + extra_flags + opts["flags"] + ["check", prog]
    else:
        cmd = [weft] + extra_flags + opts["flags"] + ["run", prog] + opts["args"]
    res = run_process(cmd, "", timeout, cwd=tmpdir)
    if res is None:
        return Result(name, False, f"timed out after {timeout:g} s")
    rc, out, err = res
    if lang in ("weft-error", "wlisp-error"):
        want = (output or "").strip()
        if rc not in (1, 2):
            return Result(name, False, f"expected failure (exit 1 or 2), got exit {rc}\n  stdout:\n" + tail(out))
        if want not in err:
            return Result(name, False, f"stderr lacks {want!r}\n  stderr:\n" + tail(err))
        return Result(name, True)
    if rc != 0:
        return Result(name, False, f"exit status {rc}\n  stderr:\n" + tail(err))
    if output is not None:
        expected = output_lines(output)
        actual = output_lines(out)
        if expected != actual:
            return Result(name, False, "stdout differs:\n" + diff(expected, actual))
    return Result(name, True)


# ---------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description="Run Weft language tests or docs examples.")
    ap.add_argument("--weft", required=True, help="path to the weft executable")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--filter", default="", help="only tests whose path contains this")
    ap.add_argument("--exclude", action="append", default=[],
                    help="skip tests whose path contains this (repeatable; said in the summary)")
    ap.add_argument("--extra-args", default="", help='weft flags before "run", e.g. "--workers 1"')
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per test (default 30)")
    ap.add_argument("--docs", metavar="DOCS_DIR", help="run the examples of the Markdown docs")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every test name")
    ap.add_argument("dirs", nargs="*", help="test directories or files")
    opts = ap.parse_args()

    weft = opts.weft
    if os.sep in weft or (os.altsep and os.altsep in weft):
        weft = os.path.abspath(weft)
    extra = shlex.split(opts.extra_args)
    jobs = max(1, opts.jobs)
    if not (shutil.which(weft) or (os.path.isfile(weft) and os.access(weft, os.X_OK))):
        print(f"error: weft executable not found: {opts.weft}", file=sys.stderr)
        return 1

    if opts.docs:
        return run_docs(weft, opts, extra, jobs)
    if not opts.dirs:
        ap.error("give at least one test directory (or --docs DIR)")

    work = []  # (path, display name, xfail reason or None)
    for d in opts.dirs:
        if not os.path.exists(d):
            print(f"error: {d} does not exist", file=sys.stderr)
            return 1
        root = d if os.path.isdir(d) else os.path.dirname(d)
        xfail = read_xfail(root)
        for path in find_tests(d):
            rel = os.path.normpath(os.path.relpath(path, root))
            if opts.filter and opts.filter not in rel:
                continue
            if any(x in rel for x in opts.exclude):
                print(f"skip  {rel} (--exclude)")
                continue
            work.append((path, rel, xfail.get(rel)))

    passed = failed = xfailed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            (pool.submit(check_test, weft, path, rel, extra, opts.timeout), reason)
            for path, rel, reason in work
        ]
        for fut, reason in futures:
            r = fut.result()
            if reason is not None:
                if r.ok:
                    failed += 1
                    print(f"XPASS {r.name}: listed in XFAIL ({reason}) but passes; remove it")
                else:
                    xfailed += 1
                    if opts.verbose:
                        print(f"xfail {r.name}: {reason}")
            elif r.ok:
                passed += 1
                if opts.verbose:
                    print(f"ok    {r.name}")
            else:
                failed += 1
                print(f"FAIL  {r.name}: {r.detail}")
    print(f"{passed} passed, {failed} failed, {xfailed} xfail")
    return 1 if failed or not work else 0


def run_docs(weft, opts, extra, jobs):
    mds = []
    for dirpath, dirnames, filenames in os.walk(opts.docs):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.endswith(".md"):
                mds.append(os.path.join(dirpath, fn))
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="weft-docs-") as tmpdir:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = []
            for md in mds:
                rel = os.path.relpath(md, opts.docs)
                if opts.filter and opts.filter not in rel:
                    continue
                for idx, (lang, code, line, output, fence) in enumerate(extract_blocks(md)):
                    futures.append(
                        pool.submit(check_doc_block, weft, tmpdir, md, idx, lang, code,
                                    line, output, fence, extra, opts.timeout))
            for fut in futures:
                r = fut.result()
                if r.ok:
                    passed += 1
                    if opts.verbose:
                        print(f"ok    {r.name}")
                else:
                    failed += 1
                    print(f"FAIL  {r.name}: {r.detail}")
    print(f"{passed} passed, {failed} failed, 0 xfail")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
