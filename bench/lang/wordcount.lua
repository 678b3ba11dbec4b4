-- Dict-heavy word count over a generated text of 1M words (same generator as the others).
local function make_text(n)
  local vocab = {}
  for i = 0, 4999 do vocab[i] = "w" .. tostring(i * 7919 % 100003) end
  local x = 42
  local words = {}
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    words[i] = vocab[(x >> 8) % 5000]
  end
  return table.concat(words, " ")
end

local function count(text)
  local counts = {}
  for w in string.gmatch(text, "%S+") do
    counts[w] = (counts[w] or 0) + 1
  end
  return counts
end

local function run(n)
  local counts = count(make_text(n))
  local distinct, top = 0, 0
  for _, c in pairs(counts) do
    distinct = distinct + 1
    if c > top then top = c end
  end
  return string.format("%d %d %d", distinct, top, counts["w7919"] or 0)
end

print(run(1000000))
