#!/usr/bin/env python3
"""denial_fuzz.py — the capability sandbox attacked with generated paths.

A folder `ok/` is granted (read and write); a sibling `secret/` is not. Paths are generated
from a seeded random mix of `..`, `.`, `//`, symlinks inside `ok/` (to the secret folder, to a
secret file, dangling into it, looping, inside), NUL bytes, `file:` URIs and glob magic, and
thrown at every `fs` function, `db.sqlite`, SQL `ATTACH`/`VACUUM INTO` and `import`. Each
batch runs as one Weft program with `--allow-read=ok --allow-write=ok`.

Asserted for every batch: the program ends normally (every refusal is a catchable error,
never a crash or a hang), no call returned the secret's contents, and the secret folder is
byte-for-byte unchanged (names, types, contents, modes, link targets). A call that succeeded
was allowed; the point is that whatever happened, nothing outside the grant was read or changed.

    python3 tests/security/denial_fuzz.py --weft build/weft [--seed N] [--cases N]
"""
import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

MARKER = "TOPSECRET-CONTENT-7f3a"

COMPONENTS = ["ok", "..", ".", "", "secret", "out", "abs", "dangling", "loop", "sub", "a.txt",
              "s.txt", "new.txt", "inner", "s.db", "v.db", "*", "**", "?.txt", "[as]*",
              "proc", "self", "root", "etc", "passwd"]

OPS = ["read_file", "read_bytes", "write_file", "append_file", "exists", "stat", "file_size",
       "list_dir", "walk", "glob", "mkdir", "remove", "remove_rec", "sqlite", "attach",
       "vacuum_into", "import"]


def build_tree(root):
    for sub in ("ok", "secret"):
        p = os.path.join(root, sub)
        if os.path.lexists(p):
            if os.path.islink(p):
                os.unlink(p)
            else:
                shutil.rmtree(p)
    ok, secret = os.path.join(root, "ok"), os.path.join(root, "secret")
    os.makedirs(os.path.join(ok, "sub"))
    os.makedirs(os.path.join(secret, "sub"))
    for rel in ("s.txt", "sub/s.txt", "a.txt", "mod.weft"):
        with open(os.path.join(secret, rel), "w") as f:
            f.write(MARKER + "\n" if not rel.endswith(".weft") else "x = '%s'\n" % MARKER)
    con = sqlite3.connect(os.path.join(secret, "s.db"))
    con.execute("CREATE TABLE t(v)")
    con.execute("INSERT INTO t VALUES (?)", (MARKER,))
    con.commit()
    con.close()
    with open(os.path.join(ok, "a.txt"), "w") as f:
        f.write("granted\n")
    os.symlink("../secret", os.path.join(ok, "out"))
    os.symlink(os.path.join(secret, "s.txt"), os.path.join(ok, "abs"))
    os.symlink(os.path.join(secret, "new.txt"), os.path.join(ok, "dangling"))
    os.symlink("loop", os.path.join(ok, "loop"))
    os.symlink("a.txt", os.path.join(ok, "inner"))
    os.symlink("/proc/self/root" + secret, os.path.join(ok, "proc"))


def snapshot(folder):
    """Everything observable of a folder tree, hashed."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(("%s %o\n" % (os.path.relpath(p, folder), st.st_mode)).encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def gen_path(rng, root):
    n = rng.randint(1, 6)
    comps = ["ok"] + [rng.choice(COMPONENTS) for _ in range(n)]
    if rng.random() < 0.3:
        comps = [rng.choice(COMPONENTS) for _ in range(n)]
    sep = "//" if rng.random() < 0.15 else "/"
    path = sep.join(comps)
    if rng.random() < 0.5:
        path = root + "/" + path
    if rng.random() < 0.1:
        path = path.replace("ok", "./ok/sub/..", 1)
    if rng.random() < 0.12:
        k = rng.randint(0, len(path))
        path = path[:k] + "\x00" + path[k:]
    if rng.random() < 0.1:
        path = "file:" + ("//" if rng.random() < 0.5 else "") + path
    return path


def weft_str(s):
    out = []
    for ch in s:
        if ch == "\x00":
            out.append("\\x00")
        elif ch in "\\\"":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def program(cases):
    lines = ["import fs", "import db", "mem = db.sqlite()", "def attempt(op, p):"]
    body = {
        "read_file": "return fs.read_file(p)",
        "read_bytes": "return str(fs.read_bytes(p))",
        "write_file": "return fs.write_file(p, 'pwned')",
        "append_file": "return fs.append_file(p, 'pwned')",
        "exists": "return fs.exists(p)",
        "stat": "return fs.stat(p)['size']",
        "file_size": "return fs.file_size(p)",
        "list_dir": "return fs.list_dir(p)",
        "walk": "return fs.walk(p)",
        "glob": "return fs.glob(p)",
        "mkdir": "return fs.mkdir(p)",
        "remove": "return fs.remove(p)",
        "remove_rec": "return fs.remove(p, recursive=True)",
        "sqlite": "c = db.sqlite(p)\n        c.execute('CREATE TABLE IF NOT EXISTS pw(x)')\n"
                  "        return c.query(\"SELECT name FROM sqlite_master\")",
        "attach": "mem.execute(\"ATTACH DATABASE '\" + p + \"' AS a\")\n"
                  "        r = mem.query('SELECT * FROM a.t')\n        mem.execute('DETACH DATABASE a')\n"
                  "        return r",
        "vacuum_into": "return mem.execute(\"VACUUM INTO '\" + p + \"'\")",
    }
    first = True
    for op, code in body.items():
        lines.append("    %s op == %s:" % ("if" if first else "elif", weft_str(op)))
        lines.append("        " + code)
        first = False
    lines.append("    return None")
    lines.append("cases = [")
    for op, p in cases:
        if op != "import":
            lines.append("    (%s, %s)," % (weft_str(op), weft_str(p)))
    lines.append("]")
    lines.append("for op, p in cases:")
    lines.append("    try:")
    lines.append("        print('OK', op, repr(attempt(op, p))[:300])")
    lines.append("    except Error as e:")
    lines.append("        print('ERR', op, e.kind)")
    # import is a statement: one try block per generated import
    for op, p in cases:
        if op == "import":
            lines.append("try:")
            lines.append("    import %s as m" % weft_str(p))
            lines.append("    print('OK import', repr(m.x)[:300])")
            lines.append("except Error as e:")
            lines.append("    print('ERR import', e.kind)")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", required=True)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--cases", type=int, default=600)
    ap.add_argument("--batch", type=int, default=60)
    args = ap.parse_args()
    weft = os.path.abspath(args.weft)
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="weft-denial-")
    root = os.path.realpath(root)
    refused = allowed = 0
    try:
        done = 0
        while done < args.cases:
            build_tree(root)
            before = snapshot(os.path.join(root, "secret"))
            cases = [(rng.choice(OPS), gen_path(rng, root)) for _ in range(min(args.batch, args.cases - done))]
            done += len(cases)
            prog = program(cases)
            # The program has a folder of its own: its folder tree is importable without flags.
            os.makedirs(os.path.join(root, "prog"), exist_ok=True)
            src = os.path.join(root, "prog", "attack.weft")
            with open(src, "w") as f:
                f.write(prog)
            try:
                r = subprocess.run([weft, "--allow-read=ok", "--allow-write=ok", "run", src],
                                   cwd=root, capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                print("FAIL: batch timed out (seed %d)" % args.seed)
                print(prog)
                return 1
            after = snapshot(os.path.join(root, "secret"))
            leaked = MARKER in r.stdout
            if r.returncode != 0 or leaked or before != after:
                print("FAIL: status %d, secret %s, contents %s (seed %d)" % (
                    r.returncode, "changed" if before != after else "unchanged",
                    "LEAKED" if leaked else "not leaked", args.seed))
                print(r.stderr[-3000:])
                for line in r.stdout.splitlines():
                    if MARKER in line:
                        print("leak:", line[:400])
                with open(os.path.join(tempfile.gettempdir(), "weft-denial-failed.weft"), "w") as f:
                    f.write(prog)
                print("program kept in", os.path.join(tempfile.gettempdir(), "weft-denial-failed.weft"))
                return 1
            for line in r.stdout.splitlines():
                if line.startswith("ERR"):
                    refused += 1
                elif line.startswith("OK"):
                    allowed += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("denial fuzz: %d calls, %d refused, %d allowed; secret unchanged, nothing leaked (seed %d)"
          % (refused + allowed, refused, allowed, args.seed))
    if refused == 0:
        print("FAIL: nothing was refused: the generator is not attacking")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
