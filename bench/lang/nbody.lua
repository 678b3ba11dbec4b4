-- N-body (Computer Language Benchmarks Game algorithm), bodies kept in parallel arrays so that
-- the Weft, Lua and Python programs perform the same float operations in the same order.
local PI = 3.141592653589793
local SOLAR_MASS = 4 * PI * PI
local DAYS_PER_YEAR = 365.24

local function make_bodies()
  local data = {
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0},
    {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05,
     9.54791938424326609e-04},
    {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05,
     2.85885980666130812e-04},
    {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05,
     4.36624404335156298e-05},
    {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05,
     5.15138902046611451e-05},
  }
  local xs, ys, zs, vxs, vys, vzs, ms = {}, {}, {}, {}, {}, {}, {}
  for i, b in ipairs(data) do
    xs[i], ys[i], zs[i] = b[1], b[2], b[3]
    vxs[i], vys[i], vzs[i] = b[4] * DAYS_PER_YEAR, b[5] * DAYS_PER_YEAR, b[6] * DAYS_PER_YEAR
    ms[i] = b[7] * SOLAR_MASS
  end
  return xs, ys, zs, vxs, vys, vzs, ms
end

local function offset_momentum(xs, ys, zs, vxs, vys, vzs, ms)
  local px, py, pz = 0.0, 0.0, 0.0
  for i = 1, 5 do
    px = px + vxs[i] * ms[i]
    py = py + vys[i] * ms[i]
    pz = pz + vzs[i] * ms[i]
  end
  vxs[1] = -px / SOLAR_MASS
  vys[1] = -py / SOLAR_MASS
  vzs[1] = -pz / SOLAR_MASS
end

local function energy(xs, ys, zs, vxs, vys, vzs, ms)
  local e = 0.0
  for i = 1, 5 do
    e = e + 0.5 * ms[i] * (vxs[i] * vxs[i] + vys[i] * vys[i] + vzs[i] * vzs[i])
    for j = i + 1, 5 do
      local dx = xs[i] - xs[j]
      local dy = ys[i] - ys[j]
      local dz = zs[i] - zs[j]
      e = e - ms[i] * ms[j] / (dx * dx + dy * dy + dz * dz) ^ 0.5
    end
  end
  return e
end

local function advance(xs, ys, zs, vxs, vys, vzs, ms, n, dt)
  for _ = 1, n do
    for i = 1, 5 do
      local xi, yi, zi, mi = xs[i], ys[i], zs[i], ms[i]
      for j = i + 1, 5 do
        local dx = xi - xs[j]
        local dy = yi - ys[j]
        local dz = zi - zs[j]
        local d2 = dx * dx + dy * dy + dz * dz
        local mag = dt / (d2 * d2 ^ 0.5)
        local mj = ms[j] * mag
        vxs[i] = vxs[i] - dx * mj
        vys[i] = vys[i] - dy * mj
        vzs[i] = vzs[i] - dz * mj
        local mim = mi * mag
        vxs[j] = vxs[j] + dx * mim
        vys[j] = vys[j] + dy * mim
        vzs[j] = vzs[j] + dz * mim
      end
    end
    for i = 1, 5 do
      xs[i] = xs[i] + dt * vxs[i]
      ys[i] = ys[i] + dt * vys[i]
      zs[i] = zs[i] + dt * vzs[i]
    end
  end
end

local n = tonumber(arg and arg[1]) or 500000
local xs, ys, zs, vxs, vys, vzs, ms = make_bodies()
offset_momentum(xs, ys, zs, vxs, vys, vzs, ms)
print(string.format("%.9f", energy(xs, ys, zs, vxs, vys, vzs, ms)))
advance(xs, ys, zs, vxs, vys, vzs, ms, n, 0.01)
print(string.format("%.9f", energy(xs, ys, zs, vxs, vys, vzs, ms)))
