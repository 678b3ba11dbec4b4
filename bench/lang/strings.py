# String building: 2M small pieces joined into one string.
def run(n):
    parts = []
    for i in range(n):
        parts.append(str(i % 1000))
    s = ",".join(parts)
    return len(s)

print(run(2_000_000))
