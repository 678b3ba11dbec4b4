%% Savina Chameneos (benchmark 4): C creatures meet in pairs through a mall actor until N
%% meetings have taken place; each then reports its meetings, which add up to 2N.
%% Colours are 0, 1, 2; two creatures that meet both take the colour neither had (or keep
%% theirs when equal), as in the Computer Language Benchmarks Game.
%% Usage: erl -noshell -pa DIR -run chameneos main [C N] -s erlang halt
-module(chameneos).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    C = ?ARG(Args, 1, 100),
    N = ?ARG(Args, 2, 600000),
    T0 = erlang:monotonic_time(),
    Main = self(),
    Mall = spawn(fun() -> mall(N, none, C, 0, Main) end),
    [spawn(fun() -> creature(Mall, I rem 3, 0) end) || I <- lists:seq(0, C - 1)],
    receive {done, Total} -> report(Total, T0) end.

mall(Left, Waiting, Alive, Sum, Main) ->
    receive
        {meet, From, _} when Left == 0 ->
            From ! finish,
            mall(Left, Waiting, Alive, Sum, Main);
        {meet, From, Colour} ->
            case Waiting of
                none ->
                    mall(Left, {From, Colour}, Alive, Sum, Main);
                {Other, OtherColour} ->
                    Other ! {mate, Colour},
                    From ! {mate, OtherColour},
                    mall(Left - 1, none, Alive, Sum, Main)
            end;
        {meetings, M} when Alive == 1 ->
            Main ! {done, Sum + M};
        {meetings, M} ->
            mall(Left, Waiting, Alive - 1, Sum + M, Main)
    end.

creature(Mall, Colour, Meetings) ->
    Mall ! {meet, self(), Colour},
    receive
        {mate, Other} -> creature(Mall, complement(Colour, Other), Meetings + 1);
        finish -> Mall ! {meetings, Meetings}
    end.

complement(A, A) -> A;
complement(A, B) -> 3 - A - B.
