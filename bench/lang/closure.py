# Closure calls: 5M calls of a closure that captured a value.
def make_adder(k):
    return lambda x: x + k

def run(n):
    add = make_adder(1)
    total = 0
    for i in range(n):
        total += add(i)
    return total

print(run(5_000_000))
