#!/usr/bin/env python3
"""The Python peer of examples/doc_index.weft: the same index of a folder (default
/usr/share/doc) into the same SQLite tables, with the packages indexed concurrently through
concurrent.futures, and the same summary on stdout (so the two can be compared line by line).

    doc_index.py [ROOT [DB]] [--workers N] [--threads]

Processes by default (ProcessPoolExecutor: the work is CPU-bound and the GIL would serialize
threads); --threads uses a ThreadPoolExecutor instead, the model closest to Weft's tasks.
Standard library only.
"""

import argparse
import concurrent.futures
import gzip
import os
import re
import sqlite3
import sys
import time

TOP_TERMS = 20
STOP = set("""the and for that this with are you not from was but have has can will all any
your which their there been were they other such into more may also its than then these those
when where what who how use used using our out one two should would could must each only some
see via per about under without within shall does did etc his her him she them your yours
it's don't can't doesn't isn't""".split())
TERM = re.compile(r"[a-z]{3,}")


def index_file(path):
    """(size, text_bytes, lines, words, terms) of one file, or None when it is skipped."""
    try:
        if os.path.islink(path):
            return None
        st = os.stat(path)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, ValueError, EOFError, gzip.BadGzipFile):
        return None
    return st.st_size, len(data), text.count("\n"), len(text.split()), TERM.findall(text.lower())


def index_package(job):
    root, package, paths = job
    rows = []
    counts = {}
    skipped = 0
    for path in paths:
        r = index_file(path)
        if r is None:
            skipped += 1
            continue
        size, text_bytes, lines, words, terms = r
        rows.append((package, path[len(root) + 1:], size, text_bytes, lines, words))
        for t in terms:
            counts[t] = counts.get(t, 0) + 1
    for t in STOP:
        counts.pop(t, None)
    return {"package": package, "rows": rows, "counts": counts, "skipped": skipped}


def files_by_package(root):
    groups = {}
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = top + "/" + name
            groups.setdefault(path[len(root) + 1:].split("/")[0], []).append(path)
    return groups


def top(counts, n):
    # The same selection as the Weft program: a cut-off from the bare counts, then a keyed sort
    # of the entries that can make it.
    items = counts.items()
    if len(items) > n:
        cut = sorted(counts.values(), reverse=True)[n - 1]
        items = [kv for kv in items if kv[1] >= cut]
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:n]


def open_db(path):
    conn = sqlite3.connect(path)
    for table in ("files", "packages", "terms"):
        conn.execute("DROP TABLE IF EXISTS " + table)
    conn.execute("CREATE TABLE files(package TEXT, path TEXT, bytes INTEGER, text_bytes INTEGER, "
                 "lines INTEGER, words INTEGER)")
    conn.execute("CREATE TABLE packages(package TEXT PRIMARY KEY, files INTEGER, text_bytes INTEGER, "
                 "lines INTEGER, words INTEGER)")
    conn.execute("CREATE TABLE terms(package TEXT, term TEXT, count INTEGER)")
    return conn


def write_db(conn, results):
    nterms = 0
    with conn:
        for res in results:
            rows = res["rows"]
            conn.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("INSERT INTO packages VALUES (?, ?, ?, ?, ?)",
                         (res["package"], len(rows), sum(r[3] for r in rows), sum(r[4] for r in rows),
                          sum(r[5] for r in rows)))
            best = [(res["package"], t, n) for t, n in top(res["counts"], TOP_TERMS)]
            conn.executemany("INSERT INTO terms VALUES (?, ?, ?)", best)
            nterms += len(best)
    conn.execute("CREATE INDEX terms_by_term ON terms(term)")
    conn.commit()
    conn.close()
    return nterms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default="/usr/share/doc")
    ap.add_argument("db", nargs="?", default="doc-index.db")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--threads", action="store_true", help="a thread pool instead of processes")
    a = ap.parse_args()
    root = a.root
    while len(root) > 1 and root.endswith("/"):
        root = root[:-1]
    start = time.monotonic()
    conn = open_db(a.db)
    groups = files_by_package(root)
    jobs = [(root, p, paths) for p, paths in sorted(groups.items())]
    pool = concurrent.futures.ThreadPoolExecutor if a.threads else concurrent.futures.ProcessPoolExecutor
    with pool(max_workers=a.workers) as ex:
        results = list(ex.map(index_package, jobs, chunksize=1))

    files = skipped = disk = text_bytes = words = lines = 0
    total = {}
    for res in results:
        skipped += res["skipped"]
        for r in res["rows"]:
            files += 1
            disk += r[2]
            text_bytes += r[3]
            lines += r[4]
            words += r[5]
        for t, n in res["counts"].items():
            total[t] = total.get(t, 0) + n
    packages = len([res for res in results if res["rows"]])
    nterms = write_db(conn, results)
    elapsed = time.monotonic() - start

    print(f"{root}: {files:,} files indexed, {skipped:,} skipped (links, unreadable, not UTF-8 text)")
    print(f"{packages:,} packages, {disk:,} bytes on disk, {text_bytes:,} bytes of text, {lines:,} lines, "
          f"{words:,} words")
    print("top 10 terms:")
    for t, n in top(total, 10):
        print(f"{n:>12,}  {t}")
    print(f"database {a.db}: {files:,} files, {packages:,} packages, {nterms:,} package terms")
    rate = files / elapsed if elapsed > 0 else 0.0
    print(f"elapsed {elapsed:.2f} s, {rate:,.1f} files/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
