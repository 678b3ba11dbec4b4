// quick_calls.h — which deferred calls run at once because their records have proved quick.
//
// A deferred call is kept as a record (vm/pending.h) so that, when it waits on the outside
// world or computes for long, its caller goes on meanwhile. A call that does neither gains
// nothing from its record, which costs several hundred instructions more than the call itself
// (BENCHMARKS.md, "kept record"). Leaves are known to be quick from their code (Chunk::leaf);
// any other function is judged by how its records ran. When the last kQuickAfter records of a
// function each ran in the dispatch loop (Interp::run_record_here), passed at most
// kQuickSafepoints safepoints, made no deferred call of their own and did nothing that can wait
// (Interp::may_wait_: no native but those that only compute, no channel or other host
// object, no join), the function is predicted quick: its deferred calls run at once as a leaf's
// do (op_CallDefer; Frame::captures keeps an error for the use of the value, as a record would).
//
// A prediction can be wrong: `get(k)` answers from a cache for a while, then fetches. So it is
// withdrawn for good (kNeverQuick) the moment a call run at once, or a record running in the
// loop, is on the stack of a task that parks or uses up its time slice
// (Interp::unpredict_quick_calls, called from the runtime's expose hook): that one call lost
// its overlap with the caller, later ones are records again. Running a deferred call at once is
// a schedule the language allows (spec section 5: deferred calls *may* run in parallel with the
// caller; --sequential runs every one at once), so a prediction changes timing, not results —
// except for a program that needs the caller to go on while the call waits (the call receives
// on a channel the caller sends to next). Such a call waits on a host object, so it keeps its
// records: the risk is left to a function that did nothing of the kind in four runs in a row
// and then does.
//
// This is the inlining decision of lazy task creation (Mohr, Kranz and Halstead, "Lazy Task
// Creation", 1990: run the child inline unless it would matter) taken from a run-time profile,
// as adaptive compilers take theirs: cheap when right, one lost overlap when wrong.
#pragma once

#include <atomic>
#include <cstdint>

#include "compiler/bytecode.h"

namespace weft {

// Quick record runs in a row before a function's deferred calls run at once.
constexpr uint8_t kQuickAfter = 4;
// The prediction was withdrawn: the function's deferred calls are records from now on.
constexpr uint8_t kNeverQuick = 0xff;

// The most safepoints (calls returning, loop back-edges: Interp::safepoints_passed) a quick
// record run may pass. Counted, not timed, so the prediction is the same on every run of a
// program with one worker, under a sanitizer or a profiler as on bare metal. About a
// microsecond of plain calls: below what starting a task and waking a worker cost
// (BENCHMARKS.md, spawn figures), so running such a call on another worker could not pay.
constexpr uint64_t kQuickSafepoints = 32;

// Are deferred calls of `c` predicted quick? (One relaxed byte load: op_CallDefer asks.)
inline bool predicted_quick(const Chunk* c) {
    return std::atomic_ref<uint8_t>(c->quick_runs).load(std::memory_order_relaxed) == kQuickAfter;
}

// A record of `c` finished in the dispatch loop without an error, having passed `safepoints`;
// `made_records`: it made deferred calls of its own (a fan-out, whose records other workers may
// take: not run at once); `may_have_waited`: it did something that can wait, though it did not
// this time (Interp::may_wait_: a channel's recv found a value ready, say; run at once, the
// next such call could wait for what its caller was about to send). Counts a quick run, or
// starts the count again.
inline void note_record_run(const Chunk* c, uint64_t safepoints, bool made_records,
                            bool may_have_waited) {
    std::atomic_ref<uint8_t> runs(c->quick_runs);
    uint8_t n = runs.load(std::memory_order_relaxed);
    if (n >= kQuickAfter) return;  // predicted already, or never
    bool quick = !made_records && !may_have_waited && safepoints <= kQuickSafepoints;
    runs.store(quick ? uint8_t(n + 1) : uint8_t(0), std::memory_order_relaxed);
}

// Withdraws the prediction for `c` for good (it waited, or ran for a whole time slice).
inline void never_quick(const Chunk* c) {
    std::atomic_ref<uint8_t> runs(c->quick_runs);
    if (runs.load(std::memory_order_relaxed) != kNeverQuick)
        runs.store(kNeverQuick, std::memory_order_relaxed);
}

// ---- Calm calls: run at once while no worker is idle ----------------------------------------
//
// A quick prediction needs short calls that make no deferred calls of their own, so a recursive
// fan-out (`a = fib(n - 1); b = fib(n - 2)`, binary-trees' `(make(d - 1), make(d - 1))`) kept a
// record per call: on one worker pfib(32) cost 2.8 times fib(32), binary-trees 1.9 times its
// --sequential run (callgrind). Those records exist so that another worker can take them; while
// no worker is idle nobody can. So a function whose last kQuickAfter records did nothing that can
// wait (a "calm" function: however long they ran, however many records they made) has its
// deferred calls run at once when rt::has_idle_worker() says no worker is looking for work — on
// --workers 1 always, on more workers while all are busy — and kept as records otherwise, which
// is when an idle worker can take one (Interp::safepoint_slow, the expose hook). This is the
// work-first principle of Cilk (Frigo, Leiserson and Randall, PLDI 1998: a spawn costs about a
// call, the thief pays) taken with the demand test of heartbeat and steal-request schedulers
// (Acar, Charguéraud and Rainey, "Scheduling parallel programs by work stealing with private
// deques", PPoPP 2013: make parallel work visible only when a worker asks for it).
//
// What it risks is what a quick prediction risks (top of this file): a calm function that one
// day waits for something its caller does after the call. That withdraws the prediction for
// good (the expose hook on Park: never_calm); a used-up time slice does not (a long computation
// is what a calm call may be).

// Are deferred calls of `c` predicted calm?
inline bool predicted_calm(const Chunk* c) {
    return std::atomic_ref<uint8_t>(c->calm_runs).load(std::memory_order_relaxed) == kQuickAfter;
}

// A record of `c` finished in the dispatch loop without an error; `may_have_waited` as for
// note_record_run.
inline void note_calm_run(const Chunk* c, bool may_have_waited) {
    std::atomic_ref<uint8_t> runs(c->calm_runs);
    uint8_t n = runs.load(std::memory_order_relaxed);
    if (n >= kQuickAfter) return;
    runs.store(may_have_waited ? uint8_t(0) : uint8_t(n + 1), std::memory_order_relaxed);
}

// Withdraws the calm prediction for `c` for good (a call of it run at once, or a record of it,
// was on the stack of a task that parked).
inline void never_calm(const Chunk* c) {
    std::atomic_ref<uint8_t> runs(c->calm_runs);
    if (runs.load(std::memory_order_relaxed) != kNeverQuick)
        runs.store(kNeverQuick, std::memory_order_relaxed);
}

}  // namespace weft
