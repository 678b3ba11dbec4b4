-- Method calls: 5M calls of a method on a table with a metatable.
local Point = {}
Point.__index = Point

function Point.new(x, y)
  return setmetatable({x = x, y = y}, Point)
end

function Point:weighted(k)
  return self.x + self.y * k
end

local function run(n)
  local p = Point.new(3, 4)
  local total = 0
  for i = 0, n - 1 do
    total = total + p:weighted(i % 100)
  end
  return total
end

print(run(5000000))
