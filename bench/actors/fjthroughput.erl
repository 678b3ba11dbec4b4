%% Savina Fork-Join throughput (benchmark 5): K actors, N messages each, sent round-robin by
%% the main process; each message does a small update of the actor's accumulator,
%% acc' = (acc + i*i) mod 1000003, and an actor reports it after its N-th message. The
%% checksum is the sum of the K reports.
%% Usage: erl -noshell -pa DIR -run fjthroughput main [K N] -s erlang halt
-module(fjthroughput).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    K = ?ARG(Args, 1, 60),
    N = ?ARG(Args, 2, 15000),
    T0 = erlang:monotonic_time(),
    Main = self(),
    Workers = [spawn(fun() -> worker(N, 0, 0, Main) end) || _ <- lists:seq(1, K)],
    send_rounds(Workers, 0, N),
    report(collect(K, 0), T0).

send_rounds(_, N, N) -> ok;
send_rounds(Workers, I, N) ->
    lists:foreach(fun(P) -> P ! {work, I} end, Workers),
    send_rounds(Workers, I + 1, N).

worker(N, Got, Acc, Main) ->
    receive
        {work, I} ->
            Acc2 = (Acc + I * I) rem 1000003,
            case Got + 1 of
                N -> Main ! {done, Acc2};
                G -> worker(N, G, Acc2, Main)
            end
    end.

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive {done, A} -> collect(K - 1, Sum + A) end.
