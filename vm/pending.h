// pending.h — lazy task creation for deferred calls (spec section 5).
//
// A deferred call (`x = f(a)`) does not start a task. It makes a promise of kind Pending: a
// record of the callee, the arguments and the context of the call, appended to the calling
// interpreter's list of deferred calls. From there it goes one of three ways:
//
//  * forced first by the task that made it (the common case: `total += x`): it runs right
//    there as a plain call on the forcer's interpreter — no task, no fiber, no nursery;
//  * needed concurrently: when the task is about to park or yield, when a worker is idle and
//    asks for work, when the promise is handed to another task (share()), or when it must run
//    in a different cancellation context: it becomes a real task (start_pending) of the
//    nursery that was innermost when the call was made;
//  * never forced: the function activation that made it awaits it when it returns (spec
//    section 5, "Ownership"), unless the return value reaches it, in which case it passes to
//    the caller's activation.
//
// The record is only ever touched by the task that made it: a promise can reach another task
// only through share(), which turns the record into a task first. (With one worker thread
// share() does nothing, but then nothing runs in parallel either: a task forcing another
// task's record starts it as a task itself.)
//
// The scheme is Mohr, Kranz and Halstead's lazy task creation ("Lazy Task Creation: A Technique
// for Increasing the Granularity of Parallel Programs", 1990), with the runtime's park/yield/
// idle-worker hooks (include/weft/runtime/task.hpp, EmbedderHooks) standing in for stealing
// from the record list.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "vm/value.h"

namespace weft {

class Interp;
struct FunctionObj;
struct PromiseObj;

// The promise of a deferred call of `fn` made by `in` (which must run inside a task): a record,
// appended to in's list. Raises like spawn when --max-tasks is reached.
// `args` are moved from.
Value defer_call(Interp& in, Value fn, std::span<Value> args, std::vector<std::string> kw_names,
                 std::vector<Value> kw_values);
// The same without keyword arguments (the common call: no empty vectors made and destroyed).
Value defer_call(Interp& in, Value fn, std::span<Value> args);

// The promise of a deferred call that already failed with `error` (a leaf function run at once,
// vm/interp.cpp): a record whose run raises `error`, so it meets every path a deferred call's
// error takes — raised where the value is used, or when the owning activation ends unused.
// None when no record can be made (the --max-tasks limit): the error then unwinds at once.
// `noted`: the error's trace starts with where the call was made (note_deferred_failure); the
// use then puts its own stack in front.
Value failed_call(Interp& in, const Value& error, bool noted = false);

// Is `e` a cancellation: the Cancelled error value, or KeyboardInterrupt (the main task
// cancelled by SIGINT, which unwinds the same way)?
bool is_cancelled_value(const Value& e);

// Turns the record `p` into a task of its nursery (no-op unless p is an unstarted record). Never
// throws: a failure to start (the --max-tasks limit) resolves the promise with that error.
// Call on the owner's fiber, or from any task when there is one worker thread.
void start_pending(PromiseObj* p) noexcept;

// Resolves the record `p` with `error` without running it. A record started as a task already is
// cancelled instead, and what it raises dropped (`error` unused). No-op for anything else.
void drop_pending(PromiseObj* p, const Value& error) noexcept;

// Forces the record `p` for `in`: runs it inline as a plain call when `in` owns it and the
// context matches, and returns true (p is resolved); otherwise makes it a task and returns false
// (the caller then joins the task).
bool force_pending(Interp& in, PromiseObj* p);

// Running a record inline, for force_pending and for the interpreter, which runs it as a frame
// of its own dispatch loop when it can (Interp::run_record_here: no nested loop, no native
// stack):
//  * record_callee_here: the callee when `in` may run `p` now as a plain call of a Weft
//    function — an unstarted record of `in`'s, forced in the cancel scope and capabilities it
//    was made in, with no keyword arguments and as many positional ones as the function has
//    parameters; else null (force_promise decides then);
//  * claim_record: `p` stops being unstarted and is marked running; returns its arguments,
//    which the caller moves into the call (a record runs once);
//  * finish_record: the claimed `p` returned `value` or failed with `error` (a value, or none):
//    resolved, and dropped from the end of in's list with the other settled records there.
FunctionObj* record_callee_here(Interp& in, const PromiseObj* p);
std::span<Value> claim_record(PromiseObj* p);
void finish_record(Interp& in, PromiseObj* p, Value&& value, Value&& error);

// The function activation at frame depth `depth` (the top one) returns `result`: its records
// (those of depth >= `depth`, the newest in in's list) that the result reaches pass to the
// caller; the rest are awaited now (forced; several errors are raised as one ErrorGroup).
void settle_activation(Interp& in, size_t depth, const Value& result);

// The activation at frame depth `depth` ends by an error: its unstarted records are dropped
// (resolved as Cancelled, never run) and started ones are cancelled (their nursery awaits them).
void abandon_activation(Interp& in, size_t depth) noexcept;

// A `with` block ends: the deferred calls made since `seq` (Interp::record_seq() when it began)
// are waited for (`settle_since`; errors raised like settle_activation's) or, when the block
// ends by an error, dropped and cancelled (`abandon_since`).
void settle_since(Interp& in, uint64_t seq);
void abandon_since(Interp& in, uint64_t seq) noexcept;

// A task's body has returned: the unstarted records its interpreter still holds past `mark`
// (the list's length when the task began: records its result carries out) run inline now,
// oldest first, each keeping its error. Started as tasks when the task's nursery closes, they
// would each be a task, and each would start the records its own result carries the same way:
// a tree-building call that an idle worker took (binary-trees' `make`) became one task per
// node. If one of them waits, the park hook starts the rest, so calls that wait still overlap.
// Their errors fail the task, as the nursery's join raised them before (one as itself, several
// as an ErrorGroup, a cancellation first).
void run_leftover_records(Interp& in, size_t mark);

// Starts every unstarted record of `in` as a task (tasks() shows them then).
void start_all_pending(Interp& in) noexcept;

// A capability context ends (restrict() block, @effects call): records made under `caps` that
// are still unstarted become tasks now, while `caps` is alive to hand to them.
void start_pending_with_caps(Interp& in, const void* caps) noexcept;

// Calls `found` on every promise reachable from `root` (each once) until it returns false
// (vm/share.cpp, which owns the object-graph walk).
void find_promises(const Value& root, const std::function<bool(PromiseObj*)>& found);

// Installs the runtime hooks (expose on park/yield/idle worker, nursery closing). Idempotent.
void install_pending_hooks();

}  // namespace weft
