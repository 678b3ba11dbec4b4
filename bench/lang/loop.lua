-- A numeric loop: sum of i*i mod 7 for 10M iterations.
local function run(n)
  local total = 0
  for i = 0, n - 1 do
    total = total + i * i % 7
  end
  return total
end

print(run(10000000))
