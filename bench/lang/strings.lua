-- String building: 2M small pieces joined into one string.
local function run(n)
  local parts = {}
  for i = 0, n - 1 do
    parts[#parts + 1] = tostring(i % 1000)
  end
  local s = table.concat(parts, ",")
  return #s
end

print(run(2000000))
