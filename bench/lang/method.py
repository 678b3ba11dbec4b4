# Method calls: 5M calls of a method of a class.
class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def weighted(self, k):
        return self.x + self.y * k

def run(n):
    p = Point(3, 4)
    total = 0
    for i in range(n):
        total += p.weighted(i % 100)
    return total

print(run(5_000_000))
