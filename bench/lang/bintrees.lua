-- binary-trees (Computer Language Benchmarks Game): allocate and walk many small trees.
-- A node is a {left, right} table; leaves are {}.
local function make(depth)
  if depth == 0 then return {} end
  return {make(depth - 1), make(depth - 1)}
end

local function check(node)
  local left = node[1]
  if left == nil then return 1 end
  return 1 + check(left) + check(node[2])
end

local function run(max_depth)
  local min_depth = 4
  local stretch = max_depth + 1
  print(string.format("stretch tree of depth %d check: %d", stretch, check(make(stretch))))
  local long_lived = make(max_depth)
  for d = min_depth, max_depth, 2 do
    local iterations = 1 << (max_depth - d + min_depth)
    local total = 0
    for _ = 1, iterations do
      total = total + check(make(d))
    end
    print(string.format("%d trees of depth %d check: %d", iterations, d, total))
  end
  print(string.format("long lived tree of depth %d check: %d", max_depth, check(long_lived)))
end

run(tonumber(arg and arg[1]) or 15)
