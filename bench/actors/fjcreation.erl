%% Savina Fork-Join creation (benchmark 6): N actors are created, each is sent one message,
%% answers (i*i) mod 1000003 and ends. The checksum is the sum of the N answers.
%% Usage: erl -noshell -pa DIR -run fjcreation main [N] -s erlang halt
-module(fjcreation).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    N = ?ARG(Args, 1, 100000),
    T0 = erlang:monotonic_time(),
    Main = self(),
    spawn_all(0, N, Main),
    report(collect(N, 0), T0).

spawn_all(N, N, _) -> ok;
spawn_all(I, N, Main) ->
    P = spawn(fun() -> leaf(Main) end),
    P ! {work, I},
    spawn_all(I + 1, N, Main).

leaf(Main) ->
    receive {work, I} -> Main ! {done, (I * I) rem 1000003} end.

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive {done, A} -> collect(K - 1, Sum + A) end.
