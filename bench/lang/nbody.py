# N-body (Computer Language Benchmarks Game algorithm), bodies kept in parallel lists so that
# the Weft, Lua and Python programs perform the same float operations in the same order.
import sys

PI = 3.141592653589793
SOLAR_MASS = 4 * PI * PI
DAYS_PER_YEAR = 365.24

def make_bodies():
    # sun, jupiter, saturn, uranus, neptune: x y z vx vy vz mass
    data = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        [4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05,
         9.54791938424326609e-04],
        [8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05,
         2.85885980666130812e-04],
        [1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05,
         4.36624404335156298e-05],
        [1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05,
         5.15138902046611451e-05],
    ]
    xs = [b[0] for b in data]
    ys = [b[1] for b in data]
    zs = [b[2] for b in data]
    vxs = [b[3] * DAYS_PER_YEAR for b in data]
    vys = [b[4] * DAYS_PER_YEAR for b in data]
    vzs = [b[5] * DAYS_PER_YEAR for b in data]
    ms = [b[6] * SOLAR_MASS for b in data]
    return [xs, ys, zs, vxs, vys, vzs, ms]

def offset_momentum(b):
    xs, ys, zs, vxs, vys, vzs, ms = b
    px = 0.0
    py = 0.0
    pz = 0.0
    for i in range(5):
        px += vxs[i] * ms[i]
        py += vys[i] * ms[i]
        pz += vzs[i] * ms[i]
    vxs[0] = -px / SOLAR_MASS
    vys[0] = -py / SOLAR_MASS
    vzs[0] = -pz / SOLAR_MASS
    return [xs, ys, zs, vxs, vys, vzs, ms]

def energy(b):
    xs, ys, zs, vxs, vys, vzs, ms = b
    e = 0.0
    for i in range(5):
        e += 0.5 * ms[i] * (vxs[i] * vxs[i] + vys[i] * vys[i] + vzs[i] * vzs[i])
        for j in range(i + 1, 5):
            dx = xs[i] - xs[j]
            dy = ys[i] - ys[j]
            dz = zs[i] - zs[j]
            e -= ms[i] * ms[j] / (dx * dx + dy * dy + dz * dz) ** 0.5
    return e

def advance(b, n, dt):
    xs, ys, zs, vxs, vys, vzs, ms = b
    for step in range(n):
        for i in range(5):
            xi = xs[i]
            yi = ys[i]
            zi = zs[i]
            mi = ms[i]
            for j in range(i + 1, 5):
                dx = xi - xs[j]
                dy = yi - ys[j]
                dz = zi - zs[j]
                d2 = dx * dx + dy * dy + dz * dz
                mag = dt / (d2 * d2 ** 0.5)
                mj = ms[j] * mag
                vxs[i] -= dx * mj
                vys[i] -= dy * mj
                vzs[i] -= dz * mj
                mim = mi * mag
                vxs[j] += dx * mim
                vys[j] += dy * mim
                vzs[j] += dz * mim
        for i in range(5):
            xs[i] += dt * vxs[i]
            ys[i] += dt * vys[i]
            zs[i] += dt * vzs[i]
    return [xs, ys, zs, vxs, vys, vzs, ms]

def run(n):
    b = offset_momentum(make_bodies())
    print(f"{energy(b):.9f}")
    b = advance(b, n, 0.01)
    print(f"{energy(b):.9f}")

run(int(sys.argv[1]) if len(sys.argv) > 1 else 500_000)
