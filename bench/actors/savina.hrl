%% savina.hrl — shared by the Erlang programs of bench/actors: argument parsing and the report
%% (the checksum, then "elapsed SECONDS" of the run alone, without the VM's start-up).
-define(ARG(Args, I, Default), (case length(Args) >= I of true -> list_to_integer(lists:nth(I, Args)); false -> Default end)).

report(Checksum, T0) ->
    Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
    io:format("~p~nelapsed ~.6f~n", [Checksum, Us / 1.0e6]).
