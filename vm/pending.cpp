// pending.cpp — deferred calls kept as records until they must be tasks (see pending.h for the
// design). The hot path is defer_call + force_pending on the same interpreter: one promise
// (arguments in place), a push and a pop on the interpreter's list, and a nested call — no
// task, fiber, nursery, lock or atomic read-modify-write.
#include "vm/pending.h"
#include "vm/quick_calls.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/task_context.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

bool is_cancelled_value(const Value& e) {
    if (!e.is(ObjType::Struct)) return false;
    int k = e.as<StructObj>()->type->builtin_error;
    return k == int(ErrorKind::Cancelled) || k == int(ErrorKind::KeyboardInterrupt);
}

namespace {

// Records the outcome of a record that ran inline (or could not start). Only the owner gets here,
// but readers on other threads may later look at a resolved promise: publish with the flag.
// `args_taken`: the record ran, and its arguments were moved out already (claim_record).
void resolve_record(PromiseObj* p, Value&& value, Value&& error, bool args_taken = false) {
    // Not shared (the usual case): no other thread can look at it, no lock needed.
    std::unique_lock<rt::SpinLock> g(p->lock, std::defer_lock);
    if (p->flags & Obj::kShared) g.lock();
    p->value = std::move(value);
    p->error = std::move(error);
    p->thunk = Value();
    if (args_taken && !p->call.extra) {
        p->call.nargs = 0;
    } else {
        p->call.clear();
    }
    p->call.slot.release();
    p->resolved.store(true, std::memory_order_release);
}

// `p` stops being an unstarted record (it starts, runs inline or is dropped).
void leave_unstarted(PromiseObj* p) { --p->call.owner->unstarted_records(); }

PromiseObj* promise_at(std::vector<Value>& list, size_t i) { return list[i].as<PromiseObj>(); }

// Drops resolved records from the end of the list, down to `mark`.
void pop_settled(std::vector<Value>& list, size_t mark) {
    while (list.size() > mark && promise_at(list, list.size() - 1)->resolved.load(std::memory_order_acquire))
        list.pop_back();
}

bool unstarted(PromiseObj* p) {
    return p->kind == PromiseObj::Kind::Pending && !p->call.running &&
           !p->resolved.load(std::memory_order_acquire);
}

// Drops the records nobody needs to keep: resolved ones, and started ones whose task has
// finished without an error (resolved here). A loop that makes many deferred calls and never
// uses them (`for u in urls: r = notify(u)`) would otherwise keep every one until its function
// returns. Amortized: the next compaction waits until the list has doubled.
constexpr size_t kMaxUnstarted = 4096;

void compact(Interp& in) {
    auto& list = in.pending();
    // Too many unstarted records: the oldest run now (any order is a valid schedule), so a loop
    // of unused deferred calls holds a bounded number of them.
    if (in.unstarted_records() > kMaxUnstarted) {
        std::vector<Value> run;
        for (size_t i = 0; i < list.size() && in.unstarted_records() - run.size() > kMaxUnstarted / 2; ++i)
            if (unstarted(promise_at(list, i)) && promise_at(list, i)->call.owner == &in) run.push_back(list[i]);
        for (auto& v : run) {
            try {
                if (unstarted(v.as<PromiseObj>())) force_pending(in, v.as<PromiseObj>());
            } catch (WeftError&) {
                // kept with its error: raised where it is used or when its owner returns
            }
        }
    }
    size_t out = 0;
    for (size_t i = 0; i < list.size(); ++i) {
        auto* p = promise_at(list, i);
        // A resolved record is dropped unless it holds an error nobody may have seen yet.
        bool drop = p->resolved.load(std::memory_order_acquire) && p->error.is_none();
        if (!drop && p->kind == PromiseObj::Kind::Task && p->task->done() && !p->task->error()) {
            try {
                (void)force_promise(in, p);
                drop = true;
            } catch (...) {
            }
        }
        if (!drop) {
            if (out != i) list[out] = std::move(list[i]);
            ++out;
        }
    }
    list.resize(out);
    in.compact_records_at() = std::max<size_t>(1024, 2 * out);
}

Interp* interp_of(rt::Task* t) {
    auto* ctx = t ? static_cast<TaskContext*>(t->user_data()) : nullptr;
    return ctx ? ctx->interp : nullptr;
}

// Starts up to `budget` unstarted records of `in` as tasks, oldest first.
void start_oldest(Interp& in, size_t budget) {
    auto& list = in.pending();
    for (size_t i = 0; i < list.size() && budget > 0 && in.unstarted_records() > 0; ++i) {
        if (unstarted(promise_at(list, i))) {
            start_pending(promise_at(list, i));
            --budget;
        }
    }
}

// The runtime's hooks (rt::EmbedderHooks).
void expose_hook(rt::Task* cur, rt::ExposeReason why) noexcept {
    if (why != rt::ExposeReason::Park) {
        Interp* in = interp_of(cur);
        if (!in) return;
        if (why == rt::ExposeReason::Yield) in->unpredict_quick_calls(/*parked=*/false);
        // An idle worker gets one record, the oldest: the largest piece of work still unstarted
        // (in a recursive fan-out the oldest record is nearest the root). A used-up time slice
        // starts some (the oldest), so calls that wait on the outside world get going while this
        // task computes; not all of them, or a loop making millions of unused calls would turn
        // each into a task faster than one worker runs them.
        start_oldest(*in, why == rt::ExposeReason::IdleWorker ? 1 : 64);
        return;
    }
    // Parking: everything unstarted of this task and of the tasks it runs inline for (they
    // wait for it) becomes a task, so it can run while they wait.
    Interp* last = nullptr;
    for (rt::Task* t = cur; t; t = t->inline_forcer()) {
        Interp* in = interp_of(t);
        if (!in || in == last) continue;
        last = in;
        // Joining a calm function's task (a stolen or started record) waits for a computation,
        // not the outside world: the calm predictions stay (vm/quick_calls.h).
        in->unpredict_quick_calls(/*parked=*/!in->joining_calm());
        auto& list = in->pending();
        // Newest first: the scan ends once every unstarted record has been seen.
        for (size_t i = list.size(); i-- > 0 && in->unstarted_records() > 0;)
            if (unstarted(promise_at(list, i))) start_pending(promise_at(list, i));
    }
}

void closing_hook(rt::Task* cur, rt::detail::CancelNode* n, bool abandoned) noexcept {
    Interp* in = interp_of(cur);
    if (!in) return;
    auto& list = in->pending();
    // The records of `n` are the unstarted ones above every unstarted record of an enclosing
    // nursery (n was innermost when they were made): scan from the newest, stop at the first
    // unstarted record of another nursery or when none is left.
    for (size_t i = list.size(); i-- > 0 && in->unstarted_records() > 0;) {
        auto* p = promise_at(list, i);
        if (!unstarted(p)) continue;
        if (p->call.nursery != n) break;
        if (abandoned) {
            leave_unstarted(p);
            resolve_record(p, Value(), in->vm().make_error(ErrorKind::Cancelled, "the task was cancelled"));
        } else {
            start_pending(p);
        }
    }
}

}  // namespace

namespace {
// Forcing the last of a chain of deferred calls, each taking the previous one's value as an
// argument, runs them nested on the native stack (and so would joining a chain of unstarted
// tasks). A chain is cut at this length: the new call's argument is forced first.
constexpr uint32_t kMaxChain = 32;

// The chain length of a new deferred call with these arguments; cut first if too long.
uint32_t chain_of(Interp& in, std::span<Value> args, std::vector<Value>& kw_values) {
    uint32_t longest = 0;
    auto look = [&](Value& v) {
        if (!v.is(ObjType::Promise)) return;
        auto* p = v.as<PromiseObj>();
        if (p->resolved.load(std::memory_order_acquire)) return;
        if (p->chain + 1 >= kMaxChain) {
            try {
                in.force(v);  // replaces the argument with its value
            } catch (WeftError&) {
                // it failed: the promise keeps its error for the callee to meet
            }
            return;
        }
        longest = std::max(longest, p->chain + 1);
    };
    for (auto& v : args) look(v);
    for (auto& v : kw_values) look(v);
    return longest;
}
}  // namespace

namespace {
// The record of a deferred call, filled in but for keyword arguments (the caller adds them).
// Null under --trace and --trace-out, which show every deferred call as a task of its own.
PromiseObj* new_record(Interp& in, Value& fn, std::span<Value> args, bool has_kw, uint32_t chain) {
    const VmOptions& o = in.vm().options();
    if (__builtin_expect(o.trace || bool(o.trace_hook), 0)) return nullptr;
    limits::TaskSlot slot = limits::TaskSlot::if_limited();  // may raise: before the allocation
    auto* p = new PromiseObj(PromiseObj::Kind::Pending);
    p->chain = chain;
    PendingCall& c = p->call;
    c.slot = std::move(slot);
    p->thunk = std::move(fn);
    c.nargs = uint32_t(args.size());
    if (args.size() > PendingCall::kInline || has_kw) c.extra = std::make_unique<PendingCall::Extra>();
    if (args.size() <= PendingCall::kInline) {
        for (size_t i = 0; i < args.size(); ++i) c.inline_args[i] = std::move(args[i]);
    } else {
        c.extra->more.reserve(args.size());
        for (auto& v : args) c.extra->more.push_back(std::move(v));
    }
    return p;
}

Value traced_call(Interp& in, const Value& fn, std::span<Value> args, std::vector<std::string> kw_names,
                  std::vector<Value> kw_values, uint32_t chain) {
    std::vector<Value> a;
    for (auto& v : args) a.push_back(std::move(v));
    Value t = spawn_task(in, fn, std::move(a), std::move(kw_names), std::move(kw_values), /*is_handle=*/false);
    t.as<PromiseObj>()->chain = chain;
    return t;
}

Value add_record(Interp& in, PromiseObj* p);
}  // namespace

Value defer_call(Interp& in, Value fn, std::span<Value> args, std::vector<std::string> kw_names,
                 std::vector<Value> kw_values) {
    uint32_t chain = chain_of(in, args, kw_values);
    PromiseObj* p = new_record(in, fn, args, !kw_names.empty(), chain);
    if (!p) return traced_call(in, fn, args, std::move(kw_names), std::move(kw_values), chain);
    if (!kw_names.empty()) {
        p->call.extra->kw_names = std::move(kw_names);
        p->call.extra->kw_values = std::move(kw_values);
    }
    return add_record(in, p);
}

Value defer_call(Interp& in, Value fn, std::span<Value> args) {
    std::vector<Value> no_kw;
    uint32_t chain = chain_of(in, args, no_kw);
    PromiseObj* p = new_record(in, fn, args, false, chain);
    if (!p) return traced_call(in, fn, args, {}, {}, chain);
    return add_record(in, p);
}

namespace {
// Sets the record's context (the caller's nursery, cancel scope, capabilities, call site) and
// appends it to in's list.
Value add_record(Interp& in, PromiseObj* p) {
    Value pv = Value::adopt(p);
    PendingCall& c = p->call;
    c.owner = &in;
    c.nursery = rt::current_nursery();
    c.cancel_context = rt::current_cancel_context();
    c.caps = in.capabilities_raw();
    c.site = in.current_site();
    p->depth = uint32_t(in.frame_count());
    p->seq = in.record_seq()++;
    auto& list = in.pending();
    if (list.size() >= in.compact_records_at()) compact(in);
    list.push_back(pv);
    ++in.unstarted_records();
    return pv;
}
}  // namespace

namespace {
// The callee of failed_call's records: raises its first argument, an error value; when the
// second is true (the trace was noted: note_deferred_failure), with the stack that needs the
// value in front of its trace.
Value reraise_argument(CallContext& cx, const CallArgs& a) {
    auto* in = dynamic_cast<Interp*>(&cx);
    throw WeftError(in && a.pos[1].as_bool() ? note_deferred_forced(*in, a.pos[0]) : a.pos[0]);
}
}  // namespace

Value failed_call(Interp& in, const Value& error, bool noted) {
    static const Value reraise = [] {
        auto* n = new NativeObj("deferred call", reraise_argument);
        n->lazy_args = true;
        n->flags |= Obj::kImmortal;
        return Value::adopt(n);
    }();
    Value args[2] = {error, Value::boolean(noted)};
    try {
        return defer_call(in, reraise, std::span<Value>(args, 2));
    } catch (WeftError&) {
        return Value();
    }
}

void start_pending(PromiseObj* p) noexcept {
    if (!unstarted(p)) return;
    leave_unstarted(p);
    PendingCall& c = p->call;
    Interp& owner = *c.owner;
    try {
        std::shared_ptr<const CapabilitySet> caps = owner.vm().program_capabilities();
        if (c.caps != caps.get()) caps = c.caps->shared_from_this();
        c.slot.release();  // the task's body holds its own
        std::vector<std::string> kw_names;
        std::vector<Value> kw_values;
        if (c.extra) {
            kw_names = std::move(c.extra->kw_names);
            kw_values = std::move(c.extra->kw_values);
        }
        bool calm = p->thunk.is(ObjType::Function) && predicted_calm(p->thunk.as<FunctionObj>()->proto->chunk);
        rt::TaskRef t = start_call_task(owner.vm(), p->thunk, c.take_args(), std::move(kw_names),
                                        std::move(kw_values), std::move(caps), c.site, c.nursery);
        c.clear();
        std::lock_guard<rt::SpinLock> g(p->lock);
        p->task = std::move(t);
        p->calm_callee = calm;
        p->thunk = Value();
        p->kind = PromiseObj::Kind::Task;
    } catch (WeftError& e) {
        resolve_record(p, Value(), owner.error_value(e));
    } catch (...) {
        resolve_record(p, Value(), owner.runtime_error_value(std::current_exception()));
    }
}

void drop_pending(PromiseObj* p, const Value& error) noexcept {
    if (p->kind == PromiseObj::Kind::Task && p->task) {
        // Started already: cancelled, and what it raises is dropped (the error that made the
        // caller drop it is the one that counts). It may have failed already: a record an idle
        // worker took, failing as the chain or activation it belonged to failed.
        p->task->cancel();
        p->task->mark_observed();
        return;
    }
    if (!unstarted(p)) return;
    leave_unstarted(p);
    resolve_record(p, Value(), Value(error));
}

bool force_pending(Interp& in, PromiseObj* p) {
    PendingCall& c = p->call;
    if (c.owner != &in) {
        // Another task's record. With one worker thread (share() marks nothing, so records can
        // reach other tasks) start it as a task from here: same thread, no race. Unless its
        // owner is running it right now (parked inside it): then, as with many workers, wait
        // for the owner to settle it.
        if (!g_multi_worker.load(std::memory_order_relaxed) && !c.running) {
            start_pending(p);
        } else {
            // Cannot happen through share(); wait for the owner to start or settle it (it does
            // so before it parks, yields or ends).
            for (;;) {
                {
                    std::lock_guard<rt::SpinLock> g(p->lock);
                    if (p->kind != PromiseObj::Kind::Pending || p->resolved.load(std::memory_order_relaxed)) break;
                }
                rt::sleep_for(0.0005);
            }
        }
        return p->kind != PromiseObj::Kind::Task;
    }
    if (c.running)
        throw WeftError(ErrorKind::RecursionError, "the value of a deferred call was needed while the call was running");
    // It runs as a task on a stack of its own, waited for without running inline, when this is
    // nested too deep already (a chain of records forcing records), or when it is forced under
    // another cancel scope or other capabilities than it was made with (a timeout around the
    // forcer must not cancel it).
    if (!in.defer_allowed() || c.cancel_context != rt::current_cancel_context() ||
        c.caps != in.capabilities_raw()) {
        p->no_inline = true;
        start_pending(p);
        return p->kind != PromiseObj::Kind::Task;
    }
    std::span<Value> args = claim_record(p);
    Value fn = p->thunk;
    std::vector<KwArg> kws;
    if (c.extra)
        for (size_t i = 0; i < c.extra->kw_names.size(); ++i)
            kws.push_back(KwArg{c.extra->kw_names[i], c.extra->kw_values[i]});
    Value value, error;
    try {
        // Its callee's frame will be the next one: error traces say where the call was made.
        in.nested_records().emplace_back(in.frame_count(), p);
        struct Pop {
            Interp& in;
            ~Pop() { in.nested_records().pop_back(); }
        } pop{in};
        value = in.call_taking(fn, args, kws);
    } catch (WeftError& e) {
        error = in.error_value(e);
    } catch (...) {
        error = in.runtime_error_value(std::current_exception());
    }
    finish_record(in, p, std::move(value), std::move(error));
    return true;
}

FunctionObj* record_callee_here(Interp& in, const PromiseObj* p) {
    const PendingCall& c = p->call;
    if (p->kind != PromiseObj::Kind::Pending || c.owner != &in || c.running || c.extra ||
        p->resolved.load(std::memory_order_relaxed) || !p->thunk.is(ObjType::Function))
        return nullptr;
    auto* fn = p->thunk.as<FunctionObj>();
    if (int(c.nargs) != fn->proto->chunk->simple_arity || c.caps != in.capabilities_raw() ||
        c.cancel_context != rt::current_cancel_context())
        return nullptr;
    return fn;
}

std::span<Value> claim_record(PromiseObj* p) {
    leave_unstarted(p);
    p->call.running = true;
    return p->call.args_to_take();
}

void finish_record(Interp& in, PromiseObj* p, Value&& value, Value&& error) {
    p->call.running = false;
    resolve_record(p, std::move(value), std::move(error), /*args_taken=*/true);
    pop_settled(in.pending(), 0);
}

namespace {

// The unresolved records of an activation, and which of them its result reaches. A few (the
// usual case) live in place; many go to the heap with a hash index.
struct ReachSet {
    static constexpr size_t kSmall = 8;
    PromiseObj* small_open[kSmall];
    char small_kept[kSmall];
    std::vector<PromiseObj*> big_open;
    std::vector<char> big_kept;
    std::unordered_set<const PromiseObj*> index;
    PromiseObj** open = small_open;
    char* kept = small_kept;
    size_t n = 0, nkept = 0;

    void build(std::vector<Value>& list, size_t mark) {
        for (size_t i = mark; i < list.size(); ++i) {
            PromiseObj* p = promise_at(list, i);
            if (p->resolved.load(std::memory_order_acquire)) continue;
            if (n < kSmall) {
                small_open[n] = p;
            } else {
                if (n == kSmall) big_open.assign(small_open, small_open + kSmall);
                big_open.push_back(p);
            }
            ++n;
        }
        if (n > kSmall) {
            open = big_open.data();
            big_kept.assign(n, 0);
            kept = big_kept.data();
            index.insert(big_open.begin(), big_open.end());
        } else {
            for (size_t i = 0; i < n; ++i) small_kept[i] = 0;
        }
    }
    // Marks `p` as reached; false once every open record is.
    bool reach(const PromiseObj* p) {
        if (n > kSmall && !index.count(p)) return nkept < n;
        for (size_t i = 0; i < n; ++i)
            if (open[i] == p && !kept[i]) {
                kept[i] = 1;
                ++nkept;
                break;
            }
        return nkept < n;
    }
};

// The records `result` reaches: the result itself and the items of a returned tuple, list or
// dict are looked at directly (the usual shapes); anything deeper takes the full walk.
void reach_from(ReachSet& rs, const Value& result) {
    auto direct = [&](const Value& v) {
        if (v.is(ObjType::Promise)) rs.reach(v.as<PromiseObj>());
    };
    direct(result);
    bool shallow = result.is(ObjType::Promise);
    if (result.is(ObjType::Tuple) || result.is(ObjType::List)) {
        shallow = true;
        const auto& items = result.is(ObjType::Tuple) ? result.as<TupleObj>()->items : result.as<ListObj>()->items;
        for (auto& v : items) {
            direct(v);
            if (v.is_obj() && !v.is(ObjType::Promise) && !v.is(ObjType::Str)) shallow = false;
        }
    }
    if (rs.nkept == rs.n || (shallow && !result.is(ObjType::Promise))) return;
    find_promises(result, [&](PromiseObj* p) { return rs.reach(p); });
}

}  // namespace

// Where the records of the activation at frame depth `depth` begin in `list` (they are the
// newest).
static size_t records_of(std::vector<Value>& list, size_t depth) {
    size_t mark = list.size();
    while (mark > 0 && promise_at(list, mark - 1)->depth >= depth) --mark;
    return mark;
}

// Where the records made since sequence number `seq` begin (the list is in creation order).
static size_t records_since(std::vector<Value>& list, uint64_t seq) {
    size_t mark = list.size();
    while (mark > 0 && promise_at(list, mark - 1)->seq >= seq) --mark;
    return mark;
}

static void abandon_from(Interp& in, size_t mark) noexcept;

// Raises the errors of awaited deferred calls: a cancellation first, else one as itself,
// several as an ErrorGroup.
static void raise_awaited_errors(Interp& in, std::vector<Value> errors) {
    for (auto& e : errors)
        if (is_cancelled_value(e)) throw WeftError(e);
    if (errors.size() == 1) throw WeftError(errors[0]);
    if (errors.size() > 1) {
        size_t n = errors.size();
        Value err = in.vm().make_error(ErrorKind::ErrorGroup, std::to_string(n) + " deferred calls failed");
        err.as<StructObj>()->error->errors = std::move(errors);
        throw WeftError(err);
    }
}

void run_leftover_records(Interp& in, size_t mark) {
    auto& list = in.pending();
    std::vector<Value> errors;
    // By index: running one adds the records its result carries to the list. When the list was
    // rewritten meanwhile (compact() drops settled records, moving the rest), scan it again.
    // At most max_depth of them: an endless `return f(n + 1)` would go on here forever (each
    // run hands the next record up); the rest then start as tasks when the nursery closes, and
    // the forcer following the chain stops it with a RecursionError (Interp::force).
    size_t budget = in.max_chain();
    for (size_t i = mark; i < list.size() && in.unstarted_records() > 0 && budget > 0; ++i) {
        Value v = list[i];  // kept alive while it runs
        auto* p = v.as<PromiseObj>();
        if (!unstarted(p) || p->call.owner != &in) continue;
        --budget;
        try {
            force_pending(in, p);
        } catch (WeftError&) {
            // resolved with its error: below
        }
        // The task fails with it, as it did when the record ran as a task of its nursery.
        if (p->resolved.load(std::memory_order_acquire) && !p->error.is_none()) errors.push_back(p->error);
        if (i >= list.size() || list[i].as_obj() != p) i = mark - 1;  // ++i makes it mark
    }
    raise_awaited_errors(in, std::move(errors));
}

// Awaits (forces) the unresolved records from index `mark` on, except those `kept` reaches,
// which pass to the activation at frame depth `caller`; then raises the errors the awaited ones
// ended with. Records that the awaited calls make and return pass to the same scope and are
// awaited too: the loop sees the list grow.
static void await_records(Interp& in, size_t mark, ReachSet* kept, size_t caller) {
    auto& list = in.pending();
    std::vector<Value> errors;
    size_t j = 0;  // kept->open is in list order: a cursor finds each one's flag
    for (size_t i = mark; i < list.size(); ++i) {
        Value v = list[i];
        auto* p = v.as<PromiseObj>();
        if (kept && j < kept->n && kept->open[j] == p && kept->kept[j++]) {
            p->depth = uint32_t(caller);
            continue;
        }
        if (p->resolved.load(std::memory_order_acquire)) continue;
        try {
            in.force(v);
        } catch (WeftError& e) {
            errors.push_back(in.error_value(e));
        }
    }
    pop_settled(list, mark);
    raise_awaited_errors(in, std::move(errors));
}

// The usual shapes of an activation that returns its records (`return (make(d), make(d))`,
// `return f(x)`): every unresolved record from `mark` on is the result itself or an item of
// the returned tuple or list. Then they all pass to the caller's activation at depth `caller`,
// and true; otherwise nothing changes (settle_activation takes the general way).
static bool pass_direct(std::vector<Value>& list, size_t mark, const Value& result, size_t caller) {
    const Value* items = &result;
    size_t n = 1;
    if (result.is(ObjType::Tuple) || result.is(ObjType::List)) {
        const auto& v = result.is(ObjType::Tuple) ? result.as<TupleObj>()->items : result.as<ListObj>()->items;
        items = v.data();
        n = v.size();
    }
    for (size_t i = mark; i < list.size(); ++i) {
        PromiseObj* p = promise_at(list, i);
        if (p->resolved.load(std::memory_order_acquire)) continue;
        bool found = false;
        for (size_t k = 0; k < n && !found; ++k) found = items[k].is_obj() && items[k].as_obj() == p;
        if (!found) return false;
    }
    for (size_t i = mark; i < list.size(); ++i) promise_at(list, i)->depth = uint32_t(caller);
    return true;
}

void settle_activation(Interp& in, size_t depth, const Value& result) {
    auto& list = in.pending();
    size_t mark = records_of(list, depth);
    pop_settled(list, mark);
    if (list.size() <= mark) return;
    if (result.is_obj() && list.size() - mark <= 8 && pass_direct(list, mark, result, depth - 1)) return;
    // Records the result reaches pass to the caller's activation (they stay in the list, with
    // the caller's depth).
    ReachSet rs;
    rs.build(list, mark);
    if (result.is_obj()) reach_from(rs, result);
    await_records(in, mark, &rs, depth - 1);
}

void settle_since(Interp& in, uint64_t seq) { await_records(in, records_since(in.pending(), seq), nullptr, 0); }

void abandon_since(Interp& in, uint64_t seq) noexcept { abandon_from(in, records_since(in.pending(), seq)); }

void abandon_activation(Interp& in, size_t depth) noexcept { abandon_from(in, records_of(in.pending(), depth)); }

static void abandon_from(Interp& in, size_t mark) noexcept {
    auto& list = in.pending();
    while (list.size() > mark) {
        Value v = std::move(list.back());
        list.pop_back();
        auto* p = v.as<PromiseObj>();
        if (p->resolved.load(std::memory_order_acquire)) continue;
        if (p->kind == PromiseObj::Kind::Pending) {
            if (unstarted(p)) {
                try {
                    drop_pending(p, in.vm().make_error(ErrorKind::Cancelled, "the task was cancelled"));
                } catch (...) {
                }
            }
        } else if (p->kind == PromiseObj::Kind::Task) {
            drop_pending(p, Value());  // as when a scope ends by an error
        }
    }
}

void start_all_pending(Interp& in) noexcept { start_oldest(in, SIZE_MAX); }

void start_pending_with_caps(Interp& in, const void* caps) noexcept {
    if (in.unstarted_records() == 0) return;
    for (auto& v : in.pending()) {
        auto* p = v.as<PromiseObj>();
        if (unstarted(p) && p->call.caps == caps) start_pending(p);
    }
}

void install_pending_hooks() {
    // The hooks are process-wide and the same for every Vm: set once (several Vms, such as
    // embedded Engines, may be created on several threads at once).
    static std::once_flag once;
    std::call_once(once, [] {
        rt::EmbedderHooks h;
        h.expose = expose_hook;
        h.closing = closing_hook;
        rt::set_embedder_hooks(h);
    });
}

}  // namespace weft
