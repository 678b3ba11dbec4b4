# A numeric loop: sum of i*i mod 7 for 10M iterations.
def run(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

print(run(10_000_000))
