#!/usr/bin/env escript
%%! +P 4000000
%% Erlang peer of bench/concurrency/skynet_*.weft: skynet with one process per leaf.
%% Usage: escript skynet.erl [N]   (default 1,000,000)
-mode(compile).

main(Args) ->
    N = case Args of [A] -> list_to_integer(A); _ -> 1000000 end,
    Self = self(),
    spawn(fun() -> skynet(Self, 0, N) end),
    receive Sum -> io:format("~p~n", [Sum]) end.

skynet(Parent, Num, 1) ->
    Parent ! Num;
skynet(Parent, Num, Size) ->
    Self = self(),
    Step = Size div 10,
    [spawn(fun() -> skynet(Self, Num + I * Step, Step) end) || I <- lists:seq(0, 9)],
    Parent ! collect(10, 0).

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive X -> collect(K - 1, Sum + X) end.
