%% Savina Counting (benchmark 2): a producer sends N increments to a counter actor, then asks
%% for the total. The increments are 0..N-1, so the total is N(N-1)/2.
%% Usage: erl -noshell -pa DIR -run counting main [N] -s erlang halt
-module(counting).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    N = ?ARG(Args, 1, 3000000),
    T0 = erlang:monotonic_time(),
    Counter = spawn(fun() -> counter(0) end),
    produce(Counter, 0, N),
    Counter ! {get, self()},
    receive {count, S} -> report(S, T0) end.

produce(_, N, N) -> ok;
produce(C, I, N) -> C ! {increment, I}, produce(C, I + 1, N).

counter(S) ->
    receive
        {increment, V} -> counter(S + V);
        {get, From} -> From ! {count, S}
    end.
