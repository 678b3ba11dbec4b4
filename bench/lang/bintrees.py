# binary-trees (Computer Language Benchmarks Game): allocate and walk many small trees.
# A node is a (left, right) tuple; leaves are (None, None).
import sys

def make(depth):
    if depth == 0:
        return (None, None)
    return (make(depth - 1), make(depth - 1))

def check(node):
    left, right = node
    if left is None:
        return 1
    return 1 + check(left) + check(right)

def run(max_depth):
    min_depth = 4
    stretch = max_depth + 1
    print(f"stretch tree of depth {stretch} check: {check(make(stretch))}")
    long_lived = make(max_depth)
    for d in range(min_depth, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + min_depth)
        total = 0
        for i in range(iterations):
            total += check(make(d))
        print(f"{iterations} trees of depth {d} check: {total}")
    print(f"long lived tree of depth {max_depth} check: {check(long_lived)}")

run(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
