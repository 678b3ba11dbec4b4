%% Savina Big (benchmark 7): W actors each send P pings, one at a time, to peers chosen by a
%% pseudo-random sequence of their own; a peer answers a ping with a pong. When an actor has
%% had its P pongs it reports the sum of the peers' indexes it pinged to a sink, which adds the
%% W reports. The sequence is the LCG x' = (1103515245 x + 12345) mod 2^31 from seed index + 1,
%% the same in the Weft program, so the checksum is the same.
%% Usage: erl -noshell -pa DIR -run big main [W P] -s erlang halt
-module(big).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    W = ?ARG(Args, 1, 120),
    P = ?ARG(Args, 2, 5000),
    T0 = erlang:monotonic_time(),
    Main = self(),
    Sink = spawn(fun() -> sink(W, 0, Main) end),
    Workers = [spawn(fun() -> worker_init(I, W, P, Sink) end) || I <- lists:seq(0, W - 1)],
    Peers = list_to_tuple(Workers),
    lists:foreach(fun(Pid) -> Pid ! {start, Peers} end, Workers),
    receive {done, S} -> report(S, T0) end.

sink(1, Sum, Main) -> receive {sum, S} -> Main ! {done, Sum + S} end;
sink(K, Sum, Main) -> receive {sum, S} -> sink(K - 1, Sum + S, Main) end.

worker_init(Id, W, P, Sink) ->
    receive
        {start, Peers} ->
            {Seed, Total} = ping(Peers, W, Id + 1, 0),
            worker(Peers, W, P, 1, Seed, Total, Sink)
    end.

ping(Peers, W, Seed, Total) ->
    Next = (Seed * 1103515245 + 12345) band 16#7FFFFFFF,
    T = Next rem W,
    element(T + 1, Peers) ! {ping, self()},
    {Next, Total + T}.

worker(Peers, W, P, Sent, Seed, Total, Sink) ->
    receive
        {ping, From} ->
            From ! pong,
            worker(Peers, W, P, Sent, Seed, Total, Sink);
        pong when Sent == P ->
            Sink ! {sum, Total},
            worker(Peers, W, P, Sent + 1, Seed, Total, Sink);
        pong ->
            {Seed2, Total2} = ping(Peers, W, Seed, Total),
            worker(Peers, W, P, Sent + 1, Seed2, Total2, Sink)
    end.
