%% Savina ThreadRing (benchmark 3): N actors in a ring pass a token R times; the actor that
%% receives it with no hops left reports its index, R mod N.
%% Usage: erl -noshell -pa DIR -run threadring main [N R] -s erlang halt
-module(threadring).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    N = ?ARG(Args, 1, 100),
    R = ?ARG(Args, 2, 2500037),
    T0 = erlang:monotonic_time(),
    Main = self(),
    Nodes = [spawn(fun() -> node_init(I, Main) end) || I <- lists:seq(0, N - 1)],
    [First | Rest] = Nodes,
    lists:foreach(fun({P, Succ}) -> P ! {succ, Succ} end, lists:zip(Nodes, Rest ++ [First])),
    First ! {token, R},
    receive {done, Id} -> report(Id, T0) end.

node_init(Id, Main) ->
    receive {succ, Succ} -> node(Id, Succ, Main) end.

node(Id, Succ, Main) ->
    receive
        {token, 0} -> Main ! {done, Id}, node(Id, Succ, Main);
        {token, H} -> Succ ! {token, H - 1}, node(Id, Succ, Main)
    end.
