-- The Lua twin of loop.wlisp: a while loop of 10M iterations (sum of i*i mod 7).
local function run(n)
  local i, total = 0, 0
  while i < n do
    total = total + i * i % 7
    i = i + 1
  end
  return total
end

print(run(10000000))
