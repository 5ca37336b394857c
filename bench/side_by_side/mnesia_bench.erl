%% The Mnesia side of bench/compare (issue 7). One invocation runs one step of one
%% group and prints the figures as `RESULT ...` lines on standard_io; progress and
%% errors go to standard_error. bench/side_by_side/mnesia_runner.sh starts the beams,
%% bounds their time and stops them; see /tmp/mishka-compare-spec.md for the format.
%%
%% Entry point: erl -run mnesia_bench main <step> key=value ...
%%   n1_commits  run= seconds= warmup_ms=                 (mnesia dir from -mnesia dir)
%%   n1_reads    run= seconds= warmup_ms=
%%   boot_build  rows= marker=                           (populate, dump_log, clean stop)
%%   boot_measure rows= figure= run=                     (fresh beam: start .. tables loaded)
%%   n3_commits  run= seconds= warmup_ms= nodes=A,B,C     (on a hidden controller node)
%%   n3_join     run= nodes=A,B,C joiner=D                (on a hidden controller node)
%%
%% Table: kv, record {kv, Key, Value}, disc_copies, Key an integer, Value 100 bytes
%% (the payload size mishka's benches write). Mnesia runs with its default settings.
-module(mnesia_bench).

-export([main/1, populate/1, populate_if/1, run_worker/5, join_from_here/2]).

-define(READ_BATCH, 1000).
-define(TAB, kv).
-define(PRELOAD_ROWS, 100000).
-define(VALUE, <<"mishka-compare-mnesia-value-012345678901234567890123456789012345678901234567890123456789012345678901">>).
-define(POPULATE_BATCH, 1000).
-define(VALUE_BYTES, 100).  % mishka's payload size; checked in main/1
%% Generous bounds for one-off setup steps; the runner's hard cap is the real limit.
-define(SETUP_TIMEOUT_MS, 240000).
-define(CONNECT_TIMEOUT_MS, 30000).

%%==================================================================== entry point

main([Step | Opts]) ->
    ?VALUE_BYTES = byte_size(?VALUE),
    Cfg = parse_opts(Opts),
    Status =
        try run_step(Step, Cfg) of
            ok -> 0
        catch
            Class:Reason:Stack ->
                progress("step ~s failed: ~p:~p~n  at ~p", [Step, Class, Reason, Stack]),
                1
        end,
    halt(Status);
main([]) ->
    progress("no step given", []),
    halt(2).

run_step("n1_commits", Cfg) ->
    {Window, Run} = {window(Cfg), int_opt(run, Cfg)},
    local_setup(0),
    run_commit_figures("n1_commit", [node()], Window, Run),
    local_teardown();
run_step("n1_reads", Cfg) ->
    {Window, Run} = {window(Cfg), int_opt(run, Cfg)},
    local_setup(?PRELOAD_ROWS),
    lists:foreach(
      fun(Threads) ->
              Figure = "n1_read_t" ++ integer_to_list(Threads),
              progress("~s: ~B reader(s), dirty_read of random existing keys", [Figure, Threads]),
              prepare_round([node()]),
              {Count, _Aborts, _Lats} =
                  run_workers({read, ?PRELOAD_ROWS}, Threads, [node()], Window),
              emit(Figure, "mnesia", Run, Count / window_seconds(Window), per_s,
                   [{threads, Threads}])
      end, [1, 2]),
    local_teardown();
run_step("boot_build", Cfg) ->
    Rows = int_opt(rows, Cfg),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    create_table([node()]),
    progress("populating ~B rows", [Rows]),
    T0 = now_ns(),
    ok = populate(Rows),
    progress("populated in ~.1f s; dumping the log", [(now_ns() - T0) / 1.0e9]),
    dumped = mnesia:dump_log(),
    Rows = mnesia:table_info(?TAB, size),
    stopped = mnesia:stop(),
    %% The marker is written last, after the clean stop: its presence means complete.
    ok = file:write_file(str_opt(marker, Cfg), marker_text(Rows)),
    ok;
run_step("boot_measure", Cfg) ->
    Rows = int_opt(rows, Cfg),
    T0 = now_ns(),
    ok = mnesia:start(),
    T1 = now_ns(),
    ok = mnesia:wait_for_tables([?TAB], ?SETUP_TIMEOUT_MS),
    T2 = now_ns(),
    case mnesia:table_info(?TAB, size) of
        Rows -> ok;
        Other -> error({wrong_table_size_after_boot, Other, expected, Rows})
    end,
    emit(str_opt(figure, Cfg), "mnesia", int_opt(run, Cfg), (T2 - T0) / 1.0e9, s,
         [{note, io_lib:format("start_ms:~.1f,load_ms:~.1f",
                               [(T1 - T0) / 1.0e6, (T2 - T1) / 1.0e6])}]),
    stopped = mnesia:stop(),
    ok;
run_step("n3_commits", Cfg) ->
    {Window, Run} = {window(Cfg), int_opt(run, Cfg)},
    Nodes = node_list(nodes, Cfg),
    connect(Nodes),
    cluster_setup(Nodes, 0),
    run_commit_figures("n3_commit", Nodes, Window, Run),
    cluster_teardown(Nodes);
run_step("n3_join", Cfg) ->
    Run = int_opt(run, Cfg),
    Nodes = node_list(nodes, Cfg),
    [Joiner] = node_list(joiner, Cfg),
    connect(Nodes ++ [Joiner]),
    cluster_setup(Nodes, ?PRELOAD_ROWS),
    [Seed | _] = Nodes,
    progress("~w joins through ~w", [Joiner, Seed]),
    {TotalNs, Steps} = ok_rpc(Joiner, ?MODULE, join_from_here, [Seed, ?PRELOAD_ROWS]),
    Note = string:join([io_lib:format("~s_ms:~.1f", [Name, Ns / 1.0e6]) || {Name, Ns} <- Steps],
                       ","),
    emit("n3_join_100k", "mnesia", Run, TotalNs / 1.0e9, s, [{note, Note}]),
    cluster_teardown(Nodes ++ [Joiner]);
run_step(Other, _Cfg) ->
    error({unknown_step, Other}).

%%==================================================================== commits

%% w1 then w16; within each, both systems. The order of the two systems flips with
%% the run number so that neither always meets the table (and the log) in the same state.
run_commit_figures(Prefix, Nodes, Window, Run) ->
    Systems = case Run rem 2 of
                  1 -> [transaction, sync];
                  0 -> [sync, transaction]
              end,
    Plan = [{Writers, System} || Writers <- [1, 16], System <- Systems],
    lists:foldl(
      fun({Writers, System}, Round) ->
              Figure = Prefix ++ "_w" ++ integer_to_list(Writers),
              progress("~s ~s: ~B writer(s) on ~B node(s)",
                       [Figure, system_name(System), Writers, length(Nodes)]),
              prepare_round(Nodes),
              {Count, Aborts, Lats} =
                  run_workers({commit, System, Round}, Writers, Nodes, Window),
              Sorted = lists:sort(Lats),
              emit(Figure, system_name(System), Run, Count / window_seconds(Window), per_s,
                   [{p50_ms, nearest_rank(Sorted, Count, 50) / 1.0e6},
                    {p99_ms, nearest_rank(Sorted, Count, 99) / 1.0e6},
                    {note, io_lib:format("commits:~B,aborts:~B", [Count, Aborts])}]),
              Round + 1
      end, 0, Plan),
    ok.

system_name(transaction) -> "mnesia_transaction";
system_name(sync) -> "mnesia_sync".

%% One commit of a new key. mnesia_sync adds mnesia:sync_log() (exported by OTP 25's
%% Mnesia 4.21: it fsyncs LATEST.LOG through mnesia_monitor), because neither
%% transaction nor sync_transaction waits for the disk; note that it syncs this node's
%% log only, also on 3 nodes.
commit(System, Key) ->
    Write = fun() -> mnesia:write({?TAB, Key, ?VALUE}) end,
    case System of
        transaction ->
            outcome(mnesia:transaction(Write));
        sync ->
            case outcome(mnesia:sync_transaction(Write)) of
                ok -> ok = mnesia:sync_log();
                Aborted -> Aborted
            end
    end.

outcome({atomic, ok}) -> ok;
outcome({aborted, Reason}) -> {aborted, Reason}.

%% Keys never collide with the preloaded 0..99999, with other writers or with other
%% rounds: the round and the writer select a block of 2^32 keys.
key_block(Round, Writer) -> (Round * 64 + Writer + 1) bsl 32.

%%==================================================================== workers

%% Starts N workers, worker w on node w mod length(Nodes), and collects their counts.
%% The window is given in OS (wall) time so that workers on other beams of the same
%% machine agree on it; each worker converts it to its own monotonic clock.
run_workers(Job, N, Nodes, {WarmupNs, WindowNs}) ->
    Start = os:system_time(nanosecond) + WarmupNs,
    End = Start + WindowNs,
    Workers = [begin
                   Node = lists:nth(W rem length(Nodes) + 1, Nodes),
                   {Pid, Ref} = spawn_monitor(Node, ?MODULE, run_worker,
                                              [self(), Job, W, Start, End]),
                   {Pid, Ref}
               end || W <- lists:seq(0, N - 1)],
    %% Each worker stops at the end of the window plus one operation.
    TimeoutMs = (WarmupNs + WindowNs) div 1000000 + 60000,
    Results = [collect(Pid, Ref, TimeoutMs) || {Pid, Ref} <- Workers],
    {lists:sum([C || {C, _, _} <- Results]),
     lists:sum([A || {_, A, _} <- Results]),
     lists:append([L || {_, _, L} <- Results])}.

collect(Pid, Ref, TimeoutMs) ->
    receive
        {worker_done, Pid, Result} ->
            erlang:demonitor(Ref, [flush]),
            Result;
        {'DOWN', Ref, process, Pid, Reason} ->
            error({worker_died, Pid, Reason})
    after TimeoutMs ->
        error({worker_timeout, Pid})
    end.

run_worker(Collector, Job, W, StartOs, EndOs) ->
    Offset = erlang:monotonic_time(nanosecond) - os:system_time(nanosecond),
    Start = StartOs + Offset,
    End = EndOs + Offset,
    Result = case Job of
                 {commit, System, Round} ->
                     commit_loop(System, key_block(Round, W), Start, End, now_ns(), 0, 0, []);
                 {read, KeySpace} ->
                     read_loop(KeySpace, Start, End, now_ns(), 0, W + 1)
             end,
    Collector ! {worker_done, self(), Result},
    ok.

%% An operation counts when it started at or after Start and ended at or before End.
%% One clock read per operation: the end of one is the start of the next.
commit_loop(_System, _Key, _Start, End, T0, Count, Aborts, Lats) when T0 >= End ->
    {Count, Aborts, Lats};
commit_loop(System, Key, Start, End, T0, Count, Aborts, Lats) ->
    Outcome = commit(System, Key),
    T1 = now_ns(),
    Counted = T0 >= Start andalso T1 =< End,
    case {Counted, Outcome} of
        {false, _} -> commit_loop(System, Key + 1, Start, End, T1, Count, Aborts, Lats);
        {true, ok} -> commit_loop(System, Key + 1, Start, End, T1, Count + 1, Aborts,
                                  [T1 - T0 | Lats]);
        {true, {aborted, _}} -> commit_loop(System, Key + 1, Start, End, T1, Count,
                                            Aborts + 1, Lats)
    end.

%% Reads go in batches of ?READ_BATCH with one clock read per batch, and keys come from a
%% small linear congruential generator: the loop costs little beside dirty_read itself, as
%% compare_bench's does beside Store::dirty_read.
read_loop(_KeySpace, _Start, End, T0, Count, _Seed) when T0 >= End ->
    {Count, 0, []};
read_loop(KeySpace, Start, End, T0, Count, Seed) ->
    Next = read_batch(?READ_BATCH, KeySpace, Seed),
    T1 = now_ns(),
    case T0 >= Start andalso T1 =< End of
        true -> read_loop(KeySpace, Start, End, T1, Count + ?READ_BATCH, Next);
        false -> read_loop(KeySpace, Start, End, T1, Count, Next)
    end.

read_batch(0, _KeySpace, Seed) ->
    Seed;
read_batch(N, KeySpace, Seed) ->
    Next = (Seed * 1103515245 + 12345) band 16#7FFFFFFF,
    [_] = mnesia:dirty_read(?TAB, (Next bsr 8) rem KeySpace),
    read_batch(N - 1, KeySpace, Next).

nearest_rank(_Sorted, 0, _P) -> 0;
nearest_rank(Sorted, Count, P) -> lists:nth(max(1, (P * Count + 99) div 100), Sorted).

%%==================================================================== setup

create_table(Nodes) ->
    {atomic, ok} = mnesia:create_table(?TAB, [{attributes, [key, value]},
                                              {disc_copies, Nodes}]),
    ok.

%% Rows 0..Rows-1 in transactions of ?POPULATE_BATCH writes (replicated like any commit).
populate(Rows) -> populate_from(0, Rows).

populate_from(From, Rows) when From >= Rows -> ok;
populate_from(From, Rows) ->
    To = min(Rows, From + ?POPULATE_BATCH),
    Batch = fun() -> [mnesia:write({?TAB, K, ?VALUE}) || K <- lists:seq(From, To - 1)], ok end,
    {atomic, ok} = mnesia:transaction(Batch),
    populate_from(To, Rows).

%% Single node: the beam is not distributed; the mnesia dir comes from the command line.
%% Rows: the table's preload (the commit groups start empty, as mishka's and etcd's do).
local_setup(Rows) ->
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    create_table([node()]),
    ok = mnesia:wait_for_tables([?TAB], ?SETUP_TIMEOUT_MS),
    progress("preloading ~B rows", [Rows]),
    ok = populate_if(Rows),
    Rows = mnesia:table_info(?TAB, size),
    ok.

populate_if(0) -> ok;
populate_if(Rows) -> populate(Rows).

local_teardown() ->
    stopped = mnesia:stop(),
    ok.

%% The rows are loaded on the first node alone and then copied to the others with
%% add_table_copy: the same end state (disc_copies of every row on every node) as
%% replicated inserts, in a second instead of tens of seconds.
cluster_setup(Nodes, Rows) ->
    [Seed | Others] = Nodes,
    progress("creating a schema on ~w", [Nodes]),
    ok = ok_rpc(Seed, mnesia, create_schema, [Nodes]),
    [ok = ok_rpc(N, mnesia, start, []) || N <- Nodes],
    {atomic, ok} = ok_rpc(Seed, mnesia, create_table,
                          [?TAB, [{attributes, [key, value]}, {disc_copies, [Seed]}]]),
    progress("preloading ~B rows, then copying them to ~B nodes",
             [Rows, length(Others)]),
    ok = ok_rpc(Seed, ?MODULE, populate_if, [Rows]),
    [{atomic, ok} = ok_rpc(Seed, mnesia, add_table_copy, [?TAB, N, disc_copies])
     || N <- Others],
    [ok = ok_rpc(N, mnesia, wait_for_tables, [[?TAB], ?SETUP_TIMEOUT_MS]) || N <- Nodes],
    [Rows = ok_rpc(N, mnesia, table_info, [?TAB, size]) || N <- Nodes],
    Copies = lists:sort(ok_rpc(Seed, mnesia, table_info, [?TAB, disc_copies])),
    Copies = lists:sort(Nodes),
    [dumped = ok_rpc(N, mnesia, dump_log, []) || N <- Nodes],
    progress("cluster ready", []),
    ok.

cluster_teardown(Nodes) ->
    [stopped = ok_rpc(N, mnesia, stop, []) || N <- Nodes],
    ok.

%% Before each measured round: flush the transaction log into the table files on every
%% node and collect garbage, so that rounds start from the same state.
prepare_round(Nodes) ->
    [dumped = ok_rpc(N, mnesia, dump_log, []) || N <- Nodes],
    [true = ok_rpc(N, erlang, garbage_collect, []) || N <- Nodes],
    ok.

%% Runs on the 4th node, whose mnesia dir is empty. Starting Mnesia there (a RAM schema)
%% is not timed; the clock starts when the node asks the cluster to let it in.
join_from_here(Seed, Rows) ->
    ok = mnesia:start(),
    T0 = now_ns(),
    {ok, Connected} = mnesia:change_config(extra_db_nodes, [Seed]),
    true = lists:member(Seed, Connected),
    T1 = now_ns(),
    {atomic, ok} = mnesia:change_table_copy_type(schema, node(), disc_copies),
    T2 = now_ns(),
    {atomic, ok} = mnesia:add_table_copy(?TAB, node(), disc_copies),
    T3 = now_ns(),
    ok = mnesia:wait_for_tables([?TAB], ?SETUP_TIMEOUT_MS),
    Rows = mnesia:table_info(?TAB, size),
    disc_copies = mnesia:table_info(?TAB, storage_type),
    T4 = now_ns(),
    {T4 - T0, [{connect, T1 - T0}, {schema_to_disc, T2 - T1}, {add_table_copy, T3 - T2},
               {verify, T4 - T3}]}.

%% Bounded: every node must answer a ping within ?CONNECT_TIMEOUT_MS.
connect(Nodes) ->
    Deadline = now_ns() + ?CONNECT_TIMEOUT_MS * 1000000,
    lists:foreach(fun(N) -> connect_one(N, Deadline) end, Nodes).

connect_one(Node, Deadline) ->
    case net_adm:ping(Node) of
        pong -> ok;
        pang ->
            case now_ns() > Deadline of
                true -> error({node_unreachable, Node});
                false -> timer:sleep(100), connect_one(Node, Deadline)
            end
    end.

ok_rpc(Node, M, F, A) ->
    case rpc:call(Node, M, F, A, ?SETUP_TIMEOUT_MS) of
        {badrpc, Reason} -> error({rpc_failed, Node, M, F, Reason});
        Result -> Result
    end.

%%==================================================================== output

emit(Figure, System, Run, Value, Unit, Extra) ->
    Decimals = case Unit of per_s -> 1; s -> 4 end,
    Fields = [[" ", atom_to_list(K), "=", field(K, V)] || {K, V} <- Extra],
    io:format("RESULT figure=~s system=~s run=~B value=~s unit=~s~s~n",
              [Figure, System, Run, float_to_list(float(Value), [{decimals, Decimals}]),
               Unit, Fields]).

field(threads, V) -> integer_to_list(V);
field(note, V) -> lists:flatten(V);
field(_Ms, V) -> float_to_list(float(V), [{decimals, 4}]).

marker_text(Rows) ->
    io_lib:format("mnesia_bench data set rows=~B value_bytes=~B~n", [Rows, byte_size(?VALUE)]).

%% Prefixed with the node and the seconds since this beam started.
progress(Format, Args) ->
    {SinceStartMs, _} = erlang:statistics(wall_clock),
    io:format(standard_error, "mnesia_bench[~s +~.1fs]: " ++ Format ++ "~n",
              [node(), SinceStartMs / 1000 | Args]).

%%==================================================================== options

window(Cfg) ->
    case {int_opt(warmup_ms, Cfg) * 1000000, round(float_opt(seconds, Cfg) * 1.0e9)} of
        {WarmupNs, WindowNs} when WarmupNs >= 0, WindowNs > 0 -> {WarmupNs, WindowNs};
        _ -> error({bad_window, maps:get(warmup_ms, Cfg), maps:get(seconds, Cfg)})
    end.

window_seconds({_WarmupNs, WindowNs}) -> WindowNs / 1.0e9.

now_ns() -> erlang:monotonic_time(nanosecond).

parse_opts(Opts) ->
    maps:from_list([case string:split(O, "=") of
                        [K, V] -> {list_to_atom(K), V};
                        _ -> error({bad_option, O})
                    end || O <- Opts]).

str_opt(Key, Cfg) ->
    case maps:find(Key, Cfg) of
        {ok, V} -> V;
        error -> error({missing_option, Key})
    end.

int_opt(Key, Cfg) -> list_to_integer(str_opt(Key, Cfg)).

float_opt(Key, Cfg) ->
    V = str_opt(Key, Cfg),
    case string:to_float(V) of
        {F, ""} -> F;
        _ -> float(list_to_integer(V))
    end.

node_list(Key, Cfg) -> [list_to_atom(N) || N <- string:split(str_opt(Key, Cfg), ",", all)].
