# Dict-heavy word count over a generated text of 1M words (same generator as the others).
def make_text(n):
    vocab = ["w" + str(i * 7919 % 100003) for i in range(5000)]
    x = 42
    words = []
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        words.append(vocab[(x >> 8) % 5000])
    return " ".join(words)

def count(text):
    counts = {}
    for w in text.split():
        counts[w] = counts.get(w, 0) + 1
    return counts

def run(n):
    counts = count(make_text(n))
    top = 0
    for c in counts.values():
        if c > top:
            top = c
    return f"{len(counts)} {top} {counts.get('w7919', 0)}"

print(run(1_000_000))
