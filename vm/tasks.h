// tasks.h — Weft tasks, promises, nurseries, channels, atoms and timeouts on
// top of the fiber runtime (runtime/, include/weft/runtime/).
//
// A PromiseObj is the Weft value of a task: `spawn f(x)` returns one, and a
// `lazy` expression makes one that runs on first force. A promise is
// transparent: the interpreter forces it (waits for its value) whenever the
// value is inspected, and replaces the register's promise with the value so a
// second inspection costs nothing. Each task runs the VM on its own Interp
// (value stack and frames), taken from a pool of the Vm.
//
// Values are handed between tasks only through task arguments and results,
// channels, atoms and module globals; each of those calls share() on them, so
// their reference counts turn atomic before a second worker thread can see
// them (vm/share.cpp, docs/architecture.md "Values on many threads").
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vm/native.h"

#include "vm/object.h"
#include "vm/limits.h"
#include "vm/task_context.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/errors.hpp"
#include "weft/runtime/scope.hpp"
#include "weft/runtime/spin_lock.hpp"
#include "weft/runtime/task.hpp"

namespace weft {

class Interp;
class Vm;
struct CapabilitySet;
namespace rt_scope {
struct Nursery;
}

// A deferred call that has not become a task (Kind::Pending, vm/pending.cpp): what to call, and
// the context it was made in, so it can run later as a plain call or as a task of the right
// nursery with the right capabilities.
struct PendingCall {
    // What few calls have: more than kInline positional arguments, keyword arguments.
    struct Extra {
        std::vector<Value> more;  // all positional arguments when there are more than kInline
        std::vector<std::string> kw_names;
        std::vector<Value> kw_values;
    };
    // Positional arguments (a method's receiver first): up to kInline in place, so the common
    // call allocates nothing but its promise.
    static constexpr uint32_t kInline = 3;
    Value inline_args[kInline];
    uint32_t nargs = 0;
    bool running = false;                         // being run inline right now
    // Run as a frame of the forcing loop (Interp::run_record_here): the forcing frame's
    // register that holds the promise, and the length in words of the forcing instruction.
    uint8_t forced_reg = 0, forced_len = 0;
    // And, when that run started, the owner's record_seq(), safepoints_passed() and
    // Interp::may_wait_ and calm_joins_: how it ran feeds the predictions of vm/quick_calls.h.
    uint64_t run_seq = 0, run_safepoints = 0, run_may_wait = 0, run_calm_joins = 0;
    limits::TaskSlot slot{nullptr};               // held only under --max-tasks
    std::unique_ptr<Extra> extra;
    Interp* owner = nullptr;                      // the interpreter whose list holds it
    rt::detail::CancelNode* nursery = nullptr;    // where it becomes a task (open while pending)
    const void* cancel_context = nullptr;         // rt::current_cancel_context() when made
    const CapabilitySet* caps = nullptr;          // the caller's capabilities when made
    CodeSite site;                                // where the call was made

    std::span<const Value> args() const {
        return nargs <= kInline ? std::span<const Value>(inline_args, nargs) : std::span<const Value>(extra->more);
    }
    // The arguments, for a caller that runs the record (once) and may move them out.
    std::span<Value> args_to_take() {
        return nargs <= kInline ? std::span<Value>(inline_args, nargs) : std::span<Value>(extra->more);
    }
    // Moves the arguments out (the record is spent).
    std::vector<Value> take_args() {
        std::vector<Value> out;
        if (nargs > kInline) {
            out = std::move(extra->more);
        } else {
            out.reserve(nargs);
            for (uint32_t i = 0; i < nargs; ++i) out.push_back(std::move(inline_args[i]));
        }
        nargs = 0;
        return out;
    }
    // Drops the arguments.
    void clear() {
        for (auto& a : inline_args) a = Value();
        nargs = 0;
        extra.reset();
    }
};

struct PromiseObj : Obj {
    // Pending: a deferred call kept as a record (lazy task creation); it turns into Task when it
    // must run concurrently, or resolves directly when its owner forces it first.
    enum class Kind : uint8_t { Task, Lazy, Pending };
    Kind kind;             // Pending -> Task happens under `lock`
    // Deferred calls: how many unfinished deferred calls this one waits on through its
    // arguments, one behind the other (`total = add(total, i)` in a loop makes a long chain).
    uint32_t chain = 0;
    // In an interpreter's list of deferred calls: the frame depth of the activation that owns
    // it (the one that made it, or the caller it passed to through a return value).
    uint32_t depth = 0;
    uint64_t seq = 0;  // creation order in that list (RecordMark / RecordSettle)
    rt::TaskRef task;      // Kind::Task
    Value thunk;           // Kind::Lazy: the closure to run on first force; Pending: the callee
    PendingCall call;      // Kind::Pending
    // Set (release) once value/error are final; readers that see it true read
    // them without the lock. Several tasks on several threads may force one promise.
    std::atomic<bool> resolved{false};
    rt::SpinLock lock;             // guards the resolution (and `runner`)
    const void* runner = nullptr;  // Lazy: the task computing it (re-entrant force is an error)
    // Lazy: the capabilities where the value was made; it is computed with them, wherever and
    // whenever it is forced (as a deferred call keeps its caller's).
    std::shared_ptr<const CapabilitySet> lazy_caps;
    Value value;           // after resolution
    Value error;           // after resolution with an error (an error value)
    // A task handle from `spawn` answers .id .state .done() .cancel() .result();
    // the promise of a deferred call is indistinguishable from its value, so
    // every attribute goes to the value (a struct's own `id` field, say).
    bool is_handle = false;
    // Started because it was forced in another cancel scope than it was made in: the forcer
    // waits for it rather than running it inline (its deadline must not cancel the call).
    bool no_inline = false;
    // A record of a function predicted calm (vm/quick_calls.h) when it became a task: joining
    // it waits for a computation, not for the outside world, so it keeps the prediction.
    bool calm_callee = false;
    explicit PromiseObj(Kind k) : Obj(ObjType::Promise), kind(k) {}
    ~PromiseObj() override;
    // The value a register or variable holding this promise may keep in its place (later reads
    // then cost nothing): finished without an error, and not a task handle (a handle's variable
    // keeps its methods). Null otherwise.
    const Value* settled_value() const {
        return !is_handle && resolved.load(std::memory_order_acquire) && error.is_none() ? &value : nullptr;
    }
    // A deferred call makes and frees a promise: the memory goes round a small per-thread free
    // list (vm/tasks.cpp) instead of through the allocator each time. Any thread may free.
    static void* operator new(std::size_t size);
    static void operator delete(void* mem, std::size_t size) noexcept;
};

// Marks the graph reachable from `v` as shared between tasks (kShared), so its
// reference counts become atomic (vm/share.cpp). A no-op with one worker thread.
// Call it on every value that another task may see: the walk stops at objects
// already shared, so calling it twice is cheap.
void share(const Value& v);
void share_all(const std::vector<Value>& vs);
// Makes a function or struct type stored in a module global that functions read immortal:
// every call through the global (`fib` calling `fib`) then reads it without touching its
// count, which would otherwise be an atomic operation once the value is shared. The object
// lives to the end of the process (module-level definitions do anyway). Other values: no-op.
void pin(const Value& v);
// True when Weft tasks may run on several worker threads (set once by the Vm).
extern std::atomic<bool> g_multi_worker;

// Waits for a promise and returns its value (raises its error). `in` is the
// forcing task's interpreter (lazy promises run on it).
Value force_promise(Interp& in, PromiseObj* p);

// Interpreter entry points (vm/interp.cpp).
Value spawn_task(Interp& in, const Value& fn, std::vector<Value> args, std::vector<std::string> kw_names,
                 std::vector<Value> kw_values, bool is_handle = true);
// `spawn f(x)` as a statement: the task is started in the current nursery (which waits for it
// and raises its error), and no handle is made.
void spawn_detached(Interp& in, const Value& fn, std::vector<Value> args);
Value make_lazy(const Value& thunk, std::shared_ptr<const CapabilitySet> caps);
// Starts a task that calls `fn` (a deferred call kept as a record until now, vm/pending.cpp) in
// `nursery`, with the capabilities and spawn site it was made with. Wakes an idle worker.
// Raises like spawn (e.g. --max-tasks reached).
rt::TaskRef start_call_task(Vm& vm, Value fn, std::vector<Value> args, std::vector<std::string> kw_names,
                            std::vector<Value> kw_values, std::shared_ptr<const CapabilitySet> caps,
                            const CodeSite& site, rt::detail::CancelNode* nursery);
bool promise_attr(Interp& in, PromiseObj* p, std::string_view name, Value& out);
Value call_promise_method(Interp& in, PromiseObj* p, std::string_view name, const CallArgs& a, bool* handled);
Value scope_enter(bool fail_fast);
// `l | r` when either side is a pipeline stage (a callable or a list of them).
bool pipe_op(Interp& in, const Value& l, const Value& r, Value& out);
void scope_exit(Interp& in, Value& nursery);
void scope_abort(Value& nursery, const Value& err);

// Leaving a nursery by an error: its tasks are cancelled and waited for; what they raise is
// dropped (the error leaving is the one that counts). For rt::Scope and rt::LazyScope.
template <class S>
void cancel_and_wait(S& scope) noexcept {
    try {
        scope.cancel();
        scope.join();
    } catch (...) {
    }
}

// Runs `fn` (returning a Value) with the task's implicit nursery around it: tasks spawned
// outside any `concurrent:` block belong to it. It collects failures instead of cancelling the
// body (spec: an error surfaces where its value is forced, or when the scope ends); at the end,
// errors nobody observed are raised — one as itself, several as an ErrorGroup. When `fn` fails,
// the nursery's tasks are cancelled and waited for, and `fn`'s error is raised.
// The nursery is an rt::LazyScope: a task that spawns nothing (a leaf of a fan-out) makes none.
// Must be the task's outermost scope (it wraps task bodies).
template <class F>
Value run_in_implicit_scope(F&& fn) {
    rt::LazyScope scope(rt::ScopeMode::CollectAll);
    Value result;
    try {
        result = fn();
    } catch (...) {
        cancel_and_wait(scope);
        throw;
    }
    try {
        scope.join();
    } catch (const rt::ErrorGroup& g) {
        if (g.errors().size() == 1) std::rethrow_exception(g.errors()[0]);
        throw rt::ErrorGroup(g.errors(), false);
    }
    return result;
}

// Registers the concurrency builtins (channel, atom, timeout, __select__, ...).
void register_concurrency_builtins(Vm& vm);

// A new Weft channel value of `capacity` (0: unbuffered), for natives that hand a channel to
// the program (monitor()); `channel_core` gives its runtime channel (nullptr for other values).
Value new_channel_value(size_t capacity);
rt::Channel<Value>* channel_core(const Value& v);

}  // namespace weft
