#!/usr/bin/env python3
"""Checks that every ```cpp block of docs/embedding.md is a file of examples/embed/, verbatim.

The examples are built and run by CTest (tests/unit/embed/CMakeLists.txt), so the guide shows
only code the tests compile. A block must start with the comment line naming its file
("// examples/embed/hello.cpp — ..."); other C++ in the guide fails this check.
Usage: check_doc_examples.py DOC ROOT
"""
import re
import sys


def main():
    doc, root = sys.argv[1], sys.argv[2]
    text = open(doc, encoding="utf-8").read()
    blocks = re.findall(r"```cpp\n(.*?)```", text, flags=re.S)
    if not blocks:
        print(f"{doc}: no ```cpp blocks")
        return 1
    bad = 0
    for i, block in enumerate(blocks, 1):
        m = re.match(r"// (examples/embed/[\w.]+\.cpp)", block)
        if not m:
            print(f"{doc}: cpp block {i} does not start with '// examples/embed/<file>.cpp'")
            bad += 1
            continue
        path = f"{root}/{m.group(1)}"
        try:
            src = open(path, encoding="utf-8").read()
        except OSError as e:
            print(f"{doc}: cpp block {i}: {e}")
            bad += 1
            continue
        if src != block:
            print(f"{doc}: cpp block {i} differs from {m.group(1)}")
            bad += 1
    print(f"{len(blocks)} blocks, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
