-- Closure calls: 5M calls of a closure that captured a value.
local function make_adder(k)
  return function(x) return x + k end
end

local function run(n)
  local add = make_adder(1)
  local total = 0
  for i = 0, n - 1 do
    total = total + add(i)
  end
  return total
end

print(run(5000000))
