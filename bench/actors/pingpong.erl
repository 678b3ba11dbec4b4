%% Savina PingPong (Imam & Sarkar 2014, benchmark 1): two actors pass a message back and forth
%% N times. Ping sends V = 0..N-1, Pong answers V + 1, Ping sums the answers: N(N+1)/2.
%% Usage: erl -noshell -pa DIR -run pingpong main [N] -s erlang halt
-module(pingpong).
-export([main/1]).
-include("savina.hrl").

main(Args) ->
    N = ?ARG(Args, 1, 1000000),
    T0 = erlang:monotonic_time(),
    Main = self(),
    Pong = spawn(fun pong/0),
    spawn(fun() -> Pong ! {ping, self(), 0}, ping(Pong, 1, N, 0, Main) end),
    receive {done, Sum} -> report(Sum, T0) end.

ping(Pong, Sent, N, Sum, Main) ->
    receive
        {pong, V} when Sent == N -> Pong ! stop, Main ! {done, Sum + V};
        {pong, V} -> Pong ! {ping, self(), Sent}, ping(Pong, Sent + 1, N, Sum + V, Main)
    end.

pong() ->
    receive
        {ping, From, V} -> From ! {pong, V + 1}, pong();
        stop -> ok
    end.
