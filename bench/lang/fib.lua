-- fib(32), naive recursion: the cost of a function call.
local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

print(fib(32))
