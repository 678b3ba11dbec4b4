// tasks.cpp — the concurrency builtins of the VM: tasks and promises, nurseries
// (`concurrent:`), channels, select, atoms, timeouts and cancel scopes, sleep,
// race and parallel_map, all on the fiber runtime.
//
// Every Weft task runs the interpreter on its own Interp, taken from the Vm's
// pool and returned when the task ends, so an idle pooled interpreter is reused
// by the next task. Errors cross the C++/Weft boundary in both directions:
// runtime exceptions (rt::Cancelled, rt::TimeoutError, ...) become Weft error
// values inside the interpreter (so `finally` blocks run and handlers see
// them), and a Weft `Cancelled` that leaves a task body becomes rt::Cancelled
// again, so the runtime's scopes treat it as a cancellation, not a failure.
#include "vm/tasks.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "vm/block_cache.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/limits.h"
#include "vm/memory.h"
#include "vm/pending.h"
#include "vm/progress.h"
#include "vm/sys.h"
#include "vm/task_context.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

namespace {

[[noreturn]] void type_err(const std::string& m) { throw WeftError(ErrorKind::TypeError, m); }

double seconds_arg(const Value& v, const char* what) {
    if (!v.is_number()) type_err(std::string(what) + " must be a number of seconds, not " + type_name(v));
    return v.as_number();
}

const Value* kw(const CallArgs& a, std::string_view n) { return a.find_kw(n); }

bool in_task() { return rt::current_task() != nullptr; }

bool is_cancelled_error(const Value& e) {
    return e.is(ObjType::Struct) && e.as<StructObj>()->type->builtin_error == int(ErrorKind::Cancelled);
}

}  // namespace

namespace {

// The body of a task that calls a Weft callable. Construction shares the
// callee and the arguments (they are about to be seen by another task, maybe
// on another thread); the result and the error are shared on the way out.
struct CallBody {
    // Keyword arguments, kept out of line: most spawned calls have none, and a body is moved
    // once and destroyed on every spawn.
    struct Keywords {
        std::vector<std::string> names;
        std::vector<Value> values;
    };
    Vm* vm;
    Value fn;
    std::vector<Value> args;
    std::unique_ptr<Keywords> kw;
    std::shared_ptr<const CapabilitySet> caps;
    // Called more than once (a retried branch): keeps its arguments; else they are moved into
    // the call (Interp::call_taking).
    bool reusable = false;
    // Where the task was started (captured here, in the spawning task) and, once it runs, its
    // interpreter: rt::Task::user_data() points at it (vm/task_context.h).
    TaskContext ctx = child_task_context();
    // Counts the task against --max-tasks from the spawn until the body ends (vm/limits.h).
    // (The slot also tells module code that other tasks are alive: interp.cpp, op_SetGlobal.)
    limits::TaskSlot slot{};

    CallBody(Vm* v, Value f, std::vector<Value> a, std::vector<std::string> kn, std::vector<Value> kv,
             std::shared_ptr<const CapabilitySet> c)
        : vm(v), fn(std::move(f)), args(std::move(a)), caps(std::move(c)) {
        share(fn);
        share_all(args);
        if (!kn.empty()) {
            share_all(kv);
            kw.reset(new Keywords{std::move(kn), std::move(kv)});
        }
    }
    CallBody(CallBody&&) noexcept = default;

    Value operator()() {
        rt::Task* t = rt::current_task();
        // Forced before it started (a deferred call whose value was needed at
        // once): it runs inline on the forcer's stack, so it can also run on the
        // forcer's interpreter, as a plain nested call would — no second value
        // stack to fetch from the pool. Otherwise it gets its own.
        Interp* host = nullptr;
        if (rt::Task* f = t ? t->inline_forcer() : nullptr)
            if (auto* fc = static_cast<TaskContext*>(f->user_data())) host = fc->interp;
        Interp* in = host ? host : vm->acquire_interp();
        struct Release {
            CallBody* body;
            Interp* in;
            bool pooled;
            std::shared_ptr<const CapabilitySet> saved;
            size_t floor;
            size_t records;  // the interpreter's list of deferred calls when the task began
            Interp::TaskBinding binding;  // the host's, restored (a pooled one is unbound)
            ~Release() {
                // What is left of the task's deferred calls are tasks of its nursery, which has
                // been joined: done. (Unstarted records were started when it closed.)
                auto& list = in->pending();
                if (list.size() > records) list.resize(records);
                body->ctx.interp = nullptr;
                if (pooled) {
                    body->vm->release_interp(in);
                } else {
                    in->set_capabilities(std::move(saved));
                    in->set_trace_floor(floor);
                    in->bind_task(binding);
                }
                body->slot.release();
            }
        } release{this, in, host == nullptr, host ? host->capabilities() : nullptr, in->trace_floor(),
                  in->pending().size(), in->bind_task(Interp::TaskBinding{rt::current_stack_low(), ctx.depth})};
        if (host) host->set_trace_floor(host->frame_count());
        in->set_capabilities(caps);
        if (ctx.budget && !host) in->narrow_depth(ctx.budget->max_depth);  // (a host's is narrowed)
        ctx.interp = in;
        rt::Task* task = t;
        if (task) task->set_user_data(&ctx);
        std::vector<KwArg> kws;
        if (kw)
            for (size_t i = 0; i < kw->names.size(); ++i) kws.push_back(KwArg{kw->names[i], kw->values[i]});
        try {
            Value r = run_in_implicit_scope([&] {
                Value v = reusable ? in->call_kw(fn, args, kws) : in->call_taking(fn, args, kws);
                run_leftover_records(*in, release.records);
                return v;
            });
            share(r);
            return r;
        } catch (WeftError& e) {
            if (is_cancelled_error(e.error)) throw rt::Cancelled();
            // The error leaves the task: its trace gains where the task was started.
            Value err = note_task_failure(*in, in->error_value(e), task ? task->label() : "task", ctx.spawned_at);
            share(err);
            throw WeftError(err);
        }
    }
};

// The task name of a callee ("fetch" for a function `mod.fetch`, "task" for other callables): a
// view into the function's chunk or the native's name, which outlive the spawn (the body holds
// the callee). No copy: it is computed on every spawn.
std::string_view callee_name(const Value& fn) {
    if (fn.is(ObjType::Function)) return fn.as<FunctionObj>()->proto->chunk->task_name;  // finish_chunks
    if (fn.is(ObjType::Native)) return fn.as<NativeObj>()->name;
    if (fn.is(ObjType::BoundMethod)) return callee_name(fn.as<BoundMethodObj>()->func);
    return "task";
}

}  // namespace

PromiseObj::~PromiseObj() {
    // A chain of promises each resolved to the next (`x = f(n + 1); return x`) is freed link by
    // link here, not by nested destructors, which could overflow the stack on a long chain.
    Value next = std::move(value);
    while (next.is(ObjType::Promise) && obj_unique(next.as_obj())) {
        Value after = std::move(next.as<PromiseObj>()->value);
        next = std::move(after);
    }
}

namespace {
// The per-thread free list of promise memory (vm/block_cache.h; off under AddressSanitizer).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kPromiseCache = 0;
#else
constexpr int kPromiseCache = 128;
#endif
thread_local BlockCache<kPromiseCache> t_promise_cache;
}  // namespace

void* PromiseObj::operator new(std::size_t size) {
    if (size == sizeof(PromiseObj))
        if (void* p = t_promise_cache.take(size)) return p;
    return ::operator new(size);
}

void PromiseObj::operator delete(void* mem, std::size_t size) noexcept {
    if (size == sizeof(PromiseObj) && t_promise_cache.keep(mem, size)) return;
    ::operator delete(mem);
}

namespace {
Value resolve_promise(const Value& v) {
    Interp* in = current_interp();
    if (!in) return v;
    Value out = v;
    in->force(out);
    return out;
}
struct InstallResolver {
    InstallResolver() { promise_resolver = resolve_promise; }
} install_resolver;
}  // namespace

// ---------------------------------------------------------------------------
// Spawning and forcing

Value spawn_task(Interp& in, const Value& fn, std::vector<Value> args, std::vector<std::string> kw_names,
                 std::vector<Value> kw_values, bool is_handle) {
    if (!in_task()) throw WeftError(ErrorKind::Error, "spawn outside a running program");
    auto* p = new PromiseObj(PromiseObj::Kind::Task);
    p->is_handle = is_handle;
    Value pv = Value::adopt(p);
    CallBody body{&in.vm(), fn, std::move(args), std::move(kw_names), std::move(kw_values), in.capabilities()};
    std::string_view name = callee_name(fn);
    SpawnNote note{name, is_handle ? "spawned" : "deferred"};
    SpawnNoteGuard g(&note);
    p->task = rt::spawn(std::move(body), name).ref();
    return pv;
}

void spawn_detached(Interp& in, const Value& fn, std::vector<Value> args) {
    if (!in_task()) throw WeftError(ErrorKind::Error, "spawn outside a running program");
    std::string_view name = callee_name(fn);
    SpawnNote note{name, "spawned"};
    SpawnNoteGuard g(&note);
    rt::spawn_detached(CallBody{&in.vm(), fn, std::move(args), {}, {}, in.capabilities()}, name);
}

rt::TaskRef start_call_task(Vm& vm, Value fn, std::vector<Value> args, std::vector<std::string> kw_names,
                            std::vector<Value> kw_values, std::shared_ptr<const CapabilitySet> caps,
                            const CodeSite& site, rt::detail::CancelNode* nursery) {
    std::string_view name = callee_name(fn);
    CallBody body{&vm, std::move(fn), std::move(args), std::move(kw_names), std::move(kw_values), std::move(caps)};
    body.ctx.spawned_at = site;
    return rt::spawn_into(nursery, std::move(body), name).ref();
}

namespace {
// Records the outcome of a promise exactly once (several tasks may race here).
void resolve_once(PromiseObj* p, Value value, Value error) {
    share(value);
    share(error);
    std::lock_guard<rt::SpinLock> g(p->lock);
    if (p->resolved.load(std::memory_order_relaxed)) return;
    p->value = std::move(value);
    p->error = std::move(error);
    p->thunk = Value();
    p->resolved.store(true, std::memory_order_release);
}
}  // namespace

Value force_promise(Interp& in, PromiseObj* p) {
    // A deferred call kept as a record runs here as a plain call, or becomes a task to join.
    if (p->kind == PromiseObj::Kind::Pending && !p->resolved.load(std::memory_order_acquire)) force_pending(in, p);
    if (!p->resolved.load(std::memory_order_acquire)) {
        in.note_may_wait();  // a join (vm/quick_calls.h)
        if (p->kind == PromiseObj::Kind::Lazy) {
            const void* me = rt::current_task();
            Value thunk;
            bool mine = false;
            {
                std::lock_guard<rt::SpinLock> g(p->lock);
                if (!p->resolved.load(std::memory_order_relaxed)) {
                    if (p->runner == me) throw WeftError(ErrorKind::RecursionError, "lazy value forced while it is being computed");
                    if (!p->runner) {
                        p->runner = me;
                        thunk = p->thunk;
                        mine = true;
                    }
                }
            }
            if (mine) {
                Value value, error;
                try {
                    // With the capabilities of where the value was made, restored even when
                    // the computation fails.
                    auto saved = in.capabilities();
                    struct Restore {
                        Interp& in;
                        std::shared_ptr<const CapabilitySet>& saved;
                        ~Restore() { in.set_capabilities(std::move(saved)); }
                    } restore{in, saved};
                    if (p->lazy_caps) in.set_capabilities(p->lazy_caps);
                    value = in.call(thunk, {});
                } catch (WeftError& e) {
                    error = in.error_value(e);
                }
                resolve_once(p, std::move(value), std::move(error));
            } else {
                // Another task is computing it: wait for its result.
                while (!p->resolved.load(std::memory_order_acquire)) rt::sleep_for(0.0005);
            }
        } else {
            // Running an unstarted task inline nests it on this stack: not when already deep
            // (a chain of tasks each forcing the next); then it runs on a fiber of its own.
            if (p->calm_callee) in.note_calm_join();
            struct JoiningCalm {
                Interp& in;
                bool saved;
                ~JoiningCalm() { in.set_joining_calm(saved); }
            } joining{in, in.joining_calm()};
            in.set_joining_calm(p->calm_callee);
            limits::join_within_default_timeout(*p->task, !p->no_inline && in.defer_allowed());
            std::exception_ptr err = p->task->error();
            Value value, error;
            if (err) {
                p->task->mark_observed();
                try {
                    std::rethrow_exception(err);
                } catch (WeftError& e) {
                    error = in.error_value(e);
                } catch (...) {
                    error = in.runtime_error_value(std::current_exception());
                }
            } else {
                value = *static_cast<Value*>(p->task->result_slot());
            }
            resolve_once(p, std::move(value), std::move(error));
        }
    }
    if (!p->error.is_none()) {
        // A task's error is raised here, in the task using its value: with this task's stack in
        // front of the failed task's trace (where it was started, where it failed).
        if (p->kind == PromiseObj::Kind::Task) throw WeftError(note_forced(in, p->error, p->task->label()));
        throw WeftError(p->error);
    }
    return p->value;
}

// ---------------------------------------------------------------------------
// Task handles: .done() .cancel() .result(timeout=) .id .state .name

namespace {

Value promise_method(Interp& in, PromiseObj* p, std::string_view name, const CallArgs& a, bool* handled) {
    *handled = true;
    if (name == "done" || name == "cancel" || name == "result")
        check_kwargs(name == "result" ? "timeout" : nullptr, name, a.kw);
    if (name == "done") return Value::boolean(p->resolved || (p->kind == PromiseObj::Kind::Task && p->task->done()));
    if (name == "cancel") {
        if (p->kind == PromiseObj::Kind::Task) p->task->cancel();
        return Value();
    }
    if (name == "result") {
        const Value* t = a.find_kw("timeout");
        if (!a.pos.empty()) t = &a.pos[0];
        if (t && !t->is_none() && p->kind == PromiseObj::Kind::Task && !p->resolved) {
            if (!p->task->join_for(seconds_arg(*t, "timeout")))
                throw WeftError(ErrorKind::TimeoutError, "task " + p->task->label() + " did not finish within the timeout");
        }
        return force_promise(in, p);
    }
    *handled = false;
    return Value();
}

Value task_done_m(CallContext& cx, Value& self, const CallArgs& a) {
    bool h;
    return promise_method(static_cast<Interp&>(cx), self.as<PromiseObj>(), "done", a, &h);
}
Value task_cancel_m(CallContext& cx, Value& self, const CallArgs& a) {
    bool h;
    return promise_method(static_cast<Interp&>(cx), self.as<PromiseObj>(), "cancel", a, &h);
}
Value task_result_m(CallContext& cx, Value& self, const CallArgs& a) {
    bool h;
    return promise_method(static_cast<Interp&>(cx), self.as<PromiseObj>(), "result", a, &h);
}

}  // namespace

bool promise_attr(Interp& in, PromiseObj* p, std::string_view name, Value& out) {
    if (!p->is_handle) return false;
    if (name == "id") {
        out = make_str(p->kind == PromiseObj::Kind::Task ? p->task->label() : std::string("lazy"));
        return true;
    }
    if (name == "state") {
        const char* s = "pending";
        if (p->resolved || (p->kind == PromiseObj::Kind::Task && p->task->done())) {
            s = "done";
            if (p->kind == PromiseObj::Kind::Task && p->task->error()) s = "failed";
            if (!p->error.is_none()) s = "failed";
            if (std::string_view(s) == "failed" && p->kind == PromiseObj::Kind::Task && p->task->error()) {
                try {
                    std::rethrow_exception(p->task->error());
                } catch (const rt::Cancelled&) {
                    s = "cancelled";
                } catch (WeftError& e) {
                    if (is_cancelled_error(e.error)) s = "cancelled";
                } catch (...) {
                }
            }
        } else if (p->kind == PromiseObj::Kind::Task) {
            switch (p->task->state()) {
                case rt::TaskState::Unstarted: s = "pending"; break;
                case rt::TaskState::Running: s = "running"; break;
                case rt::TaskState::Blocked: s = "blocked"; break;
                case rt::TaskState::Done: s = "done"; break;
            }
        }
        out = make_str(s);
        return true;
    }
    if (name == "done" || name == "cancel" || name == "result") {
        // `t.done` without a call: a bound method for later calls.
        auto* nat = new NativeObj(std::string(name), nullptr);
        nat->method = name == "done" ? task_done_m : name == "cancel" ? task_cancel_m : task_result_m;
        nat->kwargs = name == "result" ? "timeout" : nullptr;
        nat->self = Value::borrow(p);
        out = Value::adopt(nat);
        return true;
    }
    return false;
}

Value call_promise_method(Interp& in, PromiseObj* p, std::string_view name, const CallArgs& a, bool* handled) {
    if (!p->is_handle) {
        *handled = false;
        return Value();
    }
    return promise_method(in, p, name, a, handled);
}

// ---------------------------------------------------------------------------
// Nurseries (`concurrent:`)

namespace {

struct NurseryObj : OpaqueObj {
    rt::Scope* scope;
    explicit NurseryObj(rt::Scope* s);
    ~NurseryObj() override { delete scope; }
};
const OpaqueClass kNurseryClass{"scope"};
NurseryObj::NurseryObj(rt::Scope* s) : OpaqueObj(&kNurseryClass), scope(s) {}

}  // namespace

Value scope_enter(bool fail_fast) {
    if (!in_task()) throw WeftError(ErrorKind::Error, "concurrent: outside a running program");
    auto* s = new rt::Scope(fail_fast ? rt::ScopeMode::FailFast : rt::ScopeMode::CollectAll);
    return Value::adopt(new NurseryObj(s));
}

void scope_exit(Interp& in, Value& nursery) {
    auto* n = nursery.as<NurseryObj>();
    rt::Scope* s = n->scope;
    n->scope = nullptr;
    std::unique_ptr<rt::Scope> own(s);
    in.note_may_wait();
    if (s) s->join();  // raises the children's errors (one, or an ErrorGroup)
}

void scope_abort(Value& nursery, const Value& err) {
    auto* n = nursery.as<NurseryObj>();
    rt::Scope* s = n->scope;
    n->scope = nullptr;
    std::unique_ptr<rt::Scope> own(s);
    if (!s) return;
    if (is_cancelled_error(err) && s->cancel_called()) {
        // The body was cancelled because a child failed (fail-fast): as in Trio,
        // the children's errors are what the block raises.
        s->join();
        return;
    }
    s->cancel();
    try {
        s->join();
    } catch (...) {
        // The error that ends the block wins; the children's are consequences.
    }
}

namespace {

// In a catch block around work inside `scope`: cancels and joins the scope,
// then rethrows. When the work was cancelled by the scope itself (a child
// failed in fail-fast mode), the child's error is raised instead.
[[noreturn]] void unwind_scope(rt::Scope& scope) {
    try {
        throw;
    } catch (const rt::Cancelled&) {
        if (scope.cancel_called()) scope.join();  // throws the failed child's error
        throw;
    } catch (...) {
        cancel_and_wait(scope);
        throw;
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// Channels

namespace {

struct ChannelObj : OpaqueObj {
    rt::Channel<Value> ch;
    std::atomic<uint32_t> sends{0};  // sends to an unbounded channel (check_room)
    ChannelObj();
};

// An unbounded channel grows for as long as its senders outpace its receivers. While it
// holds 1,024 values or more, every 256th send checks that memory remains (vm/memory.h), so
// that a runaway producer gets MemoryError instead of the kernel's OOM killer (the check
// reads /proc: about 20 us, 80 ns a send).
void check_room(ChannelObj* c) {
    if (c->ch.capacity() != rt::detail::ChannelCore::kUnbounded) return;
    if ((c->sends.fetch_add(1, std::memory_order_relaxed) & 255) != 255) return;
    size_t n = c->ch.len();
    if (n >= 1024 && !memory_headroom_ok())
        throw WeftError(ErrorKind::MemoryError, "out of memory: an unbounded channel holds " + std::to_string(n) +
                                                    " values that no task has received");
}

Value ch_send(CallContext&, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("send() takes exactly one value");
    check_room(self.as<ChannelObj>());
    try {
        share(a.pos[0]);
        auto& ch = self.as<ChannelObj>()->ch;
        double bound = limits::wait_bound();
        if (bound < 0) {
            ch.send(a.pos[0]);
        } else {
            // --default-timeout: a send that waits (full or unbuffered) is bounded.
            Value v = a.pos[0];
            rt::Select sel;
            sel.send(ch, v);
            sel.timeout(bound);
            if (sel.wait() == rt::kSelectTimeout) limits::raise_default_timeout("channel send");
        }
    } catch (rt::ChannelClosed&) {
        throw WeftError(ErrorKind::ChannelClosed, "send on a closed channel");
    }
    return Value();
}

Value ch_recv(CallContext&, Value& self, const CallArgs& a) {
    auto& ch = self.as<ChannelObj>()->ch;
    const Value* t = kw(a, "timeout");
    if (!a.pos.empty()) t = &a.pos[0];
    try {
        if (t && !t->is_none()) return ch.recv_for(seconds_arg(*t, "timeout"));
        if (double bound = limits::wait_bound(); bound >= 0) {
            try {
                return ch.recv_for(bound);
            } catch (rt::TimeoutError&) {
                limits::raise_default_timeout("channel recv");
            }
        }
        return ch.recv();
    } catch (rt::ChannelClosed&) {
        throw WeftError(ErrorKind::ChannelClosed, "recv on a closed and drained channel");
    } catch (rt::TimeoutError&) {
        throw WeftError(ErrorKind::TimeoutError, "recv timed out");
    }
}

Value ch_try_recv(CallContext&, Value& self, const CallArgs&) {
    std::optional<Value> out;
    auto r = self.as<ChannelObj>()->ch.try_recv(out);
    if (r == rt::detail::TryResult::Ok) return make_tuple({Value::boolean(true), *out});
    return make_tuple({Value::boolean(false), Value()});
}

Value ch_try_send(CallContext&, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("try_send() takes exactly one value");
    check_room(self.as<ChannelObj>());
    try {
        share(a.pos[0]);
        return Value::boolean(self.as<ChannelObj>()->ch.try_send(a.pos[0]));
    } catch (rt::ChannelClosed&) {
        throw WeftError(ErrorKind::ChannelClosed, "send on a closed channel");
    }
}

Value ch_close(CallContext&, Value& self, const CallArgs&) {
    self.as<ChannelObj>()->ch.close();
    return Value();
}

const MethodInfo kChannelMethods[] = {
    {"send", ch_send, false},   {"recv", ch_recv, false, "timeout"},   {"try_recv", ch_try_recv, false},
    {"try_send", ch_try_send, false}, {"close", ch_close, false}, {nullptr, nullptr, false},
};

bool ch_attr(const OpaqueObj* self, std::string_view n, Value& out) {
    auto& ch = static_cast<const ChannelObj*>(self)->ch;
    if (n == "closed") {
        out = Value::boolean(ch.closed());
        return true;
    }
    if (n == "capacity") {
        size_t c = ch.capacity();
        out = c == rt::detail::ChannelCore::kUnbounded ? Value() : Value::integer(int64_t(c));
        return true;
    }
    return false;
}

int64_t ch_len(const OpaqueObj* self) { return int64_t(static_cast<const ChannelObj*>(self)->ch.len()); }

bool ch_iter_next(OpaqueObj* self, CallContext&, Value& out) {
    auto& ch = static_cast<ChannelObj*>(self)->ch;
    std::optional<Value> v;
    if (double bound = limits::wait_bound(); bound >= 0) {
        try {
            ch.core_ptr()->recv(&v, rt::now_ns() + std::int64_t(bound * 1e9));
        } catch (rt::TimeoutError&) {
            limits::raise_default_timeout("channel recv (for loop)");
        }
    } else {
        v = ch.recv_ok();
    }
    if (!v) return false;
    out = std::move(*v);
    return true;
}

std::string ch_repr(const OpaqueObj* self) {
    auto& ch = static_cast<const ChannelObj*>(self)->ch;
    size_t c = ch.capacity();
    return "<channel capacity=" + (c == rt::detail::ChannelCore::kUnbounded ? std::string("unbounded") : std::to_string(c)) +
           " len=" + std::to_string(ch.len()) + (ch.closed() ? " closed>" : ">");
}

const OpaqueClass kChannelClass{"channel", kChannelMethods, ch_attr, ch_repr, ch_len, ch_iter_next};
ChannelObj::ChannelObj() : OpaqueObj(&kChannelClass) {}

Value bi_channel(CallContext&, const CallArgs& a) {
    const Value* unb = kw(a, "unbounded");
    if (unb && truthy(*unb)) {
        auto* c = new ChannelObj();
        Value v = Value::adopt(c);
        c->ch = rt::Channel<Value>::make_unbounded();
        return v;
    }
    int64_t cap = 0;
    const Value* capv = a.pos.empty() ? kw(a, "capacity") : &a.pos[0];
    if (capv && !capv->is_none()) {
        if (!capv->is_int() || capv->as_int() < 0) throw WeftError(ErrorKind::ValueError, "channel capacity must be an int >= 0");
        cap = capv->as_int();
    }
    return new_channel_value(size_t(cap));
}

}  // namespace

Value new_channel_value(size_t capacity) {
    auto* c = new ChannelObj();
    Value v = Value::adopt(c);
    c->ch = rt::Channel<Value>::make(capacity);
    return v;
}

rt::Channel<Value>* channel_core(const Value& v) {
    if (!v.is(ObjType::Opaque) || v.as<OpaqueObj>()->cls != &kChannelClass) return nullptr;
    return &static_cast<ChannelObj*>(v.as<OpaqueObj>())->ch;
}

namespace {

// select over (kind, channel, value) cases: kind 0 recv, 1 recv with ok, 2 send, 3 after(d).
Value bi_select_stmt(CallContext&, const CallArgs& a) {
    const auto& cases = a.pos[0].as<ListObj>()->items;
    bool has_default = truthy(a.pos[1]);
    size_t n = cases.size();
    std::vector<std::optional<Value>> sinks(n);
    std::vector<Value> sends(n);
    rt::Select sel;
    std::vector<int> kinds(n);
    // The `after(d)` cases become the select's own timeout (the shortest one wins): its timer
    // entry is removed when another case is chosen. A timer channel per case (rt::after) stayed
    // in the timer queue until it fired, and while it was pending the deadlock detector saw a
    // waker and could not report tasks blocked after the select (issue 15, item 2b).
    int after_case = -1;
    double after_seconds = 0;
    std::vector<size_t> case_of;  // the select's case index -> the statement's case index
    for (size_t i = 0; i < n; ++i) {
        auto& t = cases[i].as<TupleObj>()->items;
        int kind = int(t[0].as_int());
        kinds[i] = kind;
        if (kind == 3) {
            double d = seconds_arg(t[2], "after()");
            if (after_case < 0 || d < after_seconds) {
                after_case = int(i);
                after_seconds = d;
            }
            continue;
        }
        if (!t[1].is(ObjType::Opaque) || t[1].as<OpaqueObj>()->cls != &kChannelClass)
            type_err("select case needs a channel, not " + type_name(t[1]));
        auto& ch = t[1].as<ChannelObj>()->ch;
        if (kind == 2) {
            sends[i] = t[2];
            share(sends[i]);
            sel.send(ch, sends[i]);
        } else {
            sel.recv(ch, sinks[i]);
        }
        case_of.push_back(i);
    }
    if (has_default) sel.default_case();
    if (after_case >= 0) sel.timeout(after_seconds);
    bool bounded = false;
    if (!has_default && after_case < 0) {
        if (double bound = limits::wait_bound(); bound >= 0) {
            sel.timeout(bound);  // --default-timeout: a select with no after() case is bounded
            bounded = true;
        }
    }
    int idx;
    try {
        idx = sel.wait();
    } catch (rt::ChannelClosed&) {
        throw WeftError(ErrorKind::ChannelClosed, "send on a closed channel in select");
    }
    if (bounded && idx == rt::kSelectTimeout) limits::raise_default_timeout("select");
    if (idx == rt::kSelectTimeout && after_case >= 0)
        return make_tuple({Value::integer(after_case), Value(), Value::boolean(true)});
    if (idx < 0) return make_tuple({Value::integer(-1), Value(), Value::boolean(false)});
    int chosen = idx;
    idx = int(case_of[size_t(chosen)]);
    int kind = kinds[size_t(idx)];
    if (kind == 0 || kind == 1) {
        bool ok = sel.received(chosen);
        if (!ok && kind == 0) throw WeftError(ErrorKind::ChannelClosed, "select: recv on a closed and drained channel");
        return make_tuple({Value::integer(idx), ok ? *sinks[size_t(idx)] : Value(), Value::boolean(ok)});
    }
    return make_tuple({Value::integer(idx), Value(), Value::boolean(true)});
}

// select([ch1, ch2], timeout=1s) -> (ch, value)
Value bi_select_fn(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.pos[0].is(ObjType::List)) type_err("select() takes a list of channels");
    const auto& chans = a.pos[0].as<ListObj>()->items;
    std::vector<std::optional<Value>> sinks(chans.size());
    rt::Select sel;
    for (size_t i = 0; i < chans.size(); ++i) {
        if (!chans[i].is(ObjType::Opaque) || chans[i].as<OpaqueObj>()->cls != &kChannelClass)
            type_err("select() needs channels, not " + type_name(chans[i]));
        sel.recv(chans[i].as<ChannelObj>()->ch, sinks[i]);
    }
    const Value* t = kw(a, "timeout");
    bool by_default = false;
    if (t && !t->is_none()) {
        sel.timeout(seconds_arg(*t, "timeout"));
    } else if (double bound = limits::wait_bound(); bound >= 0) {
        sel.timeout(bound);
        by_default = true;
    }
    for (;;) {
        int idx = sel.wait();
        if (idx == rt::kSelectTimeout && by_default) limits::raise_default_timeout("select()");
        if (idx == rt::kSelectTimeout) throw WeftError(ErrorKind::TimeoutError, "select() timed out");
        if (idx < 0) throw WeftError(ErrorKind::ChannelClosed, "select(): no channel ready");
        if (!sel.received(idx)) throw WeftError(ErrorKind::ChannelClosed, "select(): channel closed and drained");
        return make_tuple({chans[size_t(idx)], *sinks[size_t(idx)]});
    }
}

Value bi_after(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("after() takes a duration");
    return Value::number(seconds_arg(a.pos[0], "after()"));
}

// ---------------------------------------------------------------------------
// Atoms

struct AtomObj : OpaqueObj {
    std::mutex mu;
    Value value;
    Value validator;
    std::vector<std::pair<Value, Value>> watches;
    AtomObj();
};

// Every value about to be stored in an atom: checked by the validator (ValueError when
// rejected), then shared, since any task holding the atom may read it.
void atom_admit(CallContext& cx, AtomObj* at, const Value& v) {
    if (!at->validator.is_none()) {
        bool ok;
        try {
            ok = truthy(cx.call(at->validator, std::span<const Value>(&v, 1)));
        } catch (WeftError& e) {
            throw WeftError(ErrorKind::ValueError, "atom validator rejected " + repr(v));
        }
        if (!ok) throw WeftError(ErrorKind::ValueError, "atom validator rejected " + repr(v));
    }
    share(v);
}

void atom_notify(CallContext& cx, AtomObj* at, const Value& old, const Value& now) {
    std::vector<std::pair<Value, Value>> ws;
    {
        std::lock_guard<std::mutex> g(at->mu);
        ws = at->watches;
    }
    for (auto& [key, fn] : ws) {
        Value args[3] = {key, old, now};
        cx.call(fn, args);
    }
}

Value atom_get(CallContext&, Value& self, const CallArgs&) {
    auto* at = self.as<AtomObj>();
    std::lock_guard<std::mutex> g(at->mu);
    return at->value;
}

// Applies f(old, *args) with compare-and-set retry; returns (old, new).
std::pair<Value, Value> atom_apply(CallContext& cx, AtomObj* at, const CallArgs& a) {
    if (a.pos.empty()) type_err("swap() needs a function");
    for (;;) {
        Value old;
        {
            std::lock_guard<std::mutex> g(at->mu);
            old = at->value;
        }
        std::vector<Value> args{old};
        args.insert(args.end(), a.pos.begin() + 1, a.pos.end());
        Value now = cx.call(a.pos[0], args);
        atom_admit(cx, at, now);
        {
            std::lock_guard<std::mutex> g(at->mu);
            if (at->value.is_obj() ? (old.is_obj() && at->value.as_obj() == old.as_obj()) : values_equal(at->value, old)) {
                at->value = now;
            } else {
                continue;  // someone else changed it: retry with the new value
            }
        }
        atom_notify(cx, at, old, now);
        return {old, now};
    }
}

Value atom_swap(CallContext& cx, Value& self, const CallArgs& a) { return atom_apply(cx, self.as<AtomObj>(), a).second; }

Value atom_swap_vals(CallContext& cx, Value& self, const CallArgs& a) {
    auto [o, n] = atom_apply(cx, self.as<AtomObj>(), a);
    return make_tuple({o, n});
}

Value atom_reset(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("reset() takes one value");
    auto* at = self.as<AtomObj>();
    atom_admit(cx, at, a.pos[0]);
    Value old;
    {
        std::lock_guard<std::mutex> g(at->mu);
        old = at->value;
        at->value = a.pos[0];
    }
    atom_notify(cx, at, old, a.pos[0]);
    return a.pos[0];
}

Value atom_cas(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("compare_and_set() takes (expected, new)");
    auto* at = self.as<AtomObj>();
    atom_admit(cx, at, a.pos[1]);
    Value old;
    {
        std::lock_guard<std::mutex> g(at->mu);
        if (!values_equal(at->value, a.pos[0])) return Value::boolean(false);
        old = at->value;
        at->value = a.pos[1];
    }
    atom_notify(cx, at, old, a.pos[1]);
    return Value::boolean(true);
}

Value atom_watch(CallContext&, Value& self, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("watch() takes (key, function)");
    auto* at = self.as<AtomObj>();
    share(a.pos[0]);
    share(a.pos[1]);
    std::lock_guard<std::mutex> g(at->mu);
    for (auto& w : at->watches)
        if (values_equal(w.first, a.pos[0])) {
            w.second = a.pos[1];
            return Value();
        }
    at->watches.emplace_back(a.pos[0], a.pos[1]);
    return Value();
}

Value atom_unwatch(CallContext&, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("unwatch() takes a key");
    auto* at = self.as<AtomObj>();
    std::lock_guard<std::mutex> g(at->mu);
    auto& ws = at->watches;
    ws.erase(std::remove_if(ws.begin(), ws.end(), [&](auto& w) { return values_equal(w.first, a.pos[0]); }), ws.end());
    return Value();
}

const MethodInfo kAtomMethods[] = {
    {"get", atom_get, false},         {"swap", atom_swap, false},   {"swap_vals", atom_swap_vals, false},
    {"reset", atom_reset, false},     {"compare_and_set", atom_cas, false}, {"watch", atom_watch, false},
    {"unwatch", atom_unwatch, false}, {nullptr, nullptr, false},
};

std::string atom_repr(const OpaqueObj* self) {
    auto* at = const_cast<AtomObj*>(static_cast<const AtomObj*>(self));
    std::lock_guard<std::mutex> g(at->mu);
    return "atom(" + repr(at->value) + ")";
}

// Stored values are shared as they are stored; this covers the ones stored
// before the atom itself became visible to other threads.
void atom_share_children(OpaqueObj* self) {
    auto* at = static_cast<AtomObj*>(self);
    std::lock_guard<std::mutex> g(at->mu);
    share(at->value);
    share(at->validator);
    for (auto& [k, fn] : at->watches) {
        share(k);
        share(fn);
    }
}

const OpaqueClass kAtomClass{"atom", kAtomMethods, nullptr, atom_repr, nullptr, nullptr, nullptr, atom_share_children};
AtomObj::AtomObj() : OpaqueObj(&kAtomClass) {}

Value bi_atom(CallContext& cx, const CallArgs& a) {
    auto* at = new AtomObj();
    Value v = Value::adopt(at);
    if (!a.pos.empty()) at->value = a.pos[0];
    if (const Value* val = kw(a, "validator")) at->validator = *val;
    atom_admit(cx, at, at->value);
    return v;
}

// ---------------------------------------------------------------------------
// Timeouts and cancel scopes: host objects used with `with`.

enum class ScopeKind : uint8_t { Timeout, MoveOn, Cancel, Shield };

struct CancelScopeObj : OpaqueObj {
    ScopeKind kind;
    double seconds = -1;          // relative timeout, or -1
    std::int64_t deadline_ns = -1;  // absolute deadline, or -1
    // Open scopes, innermost last. One at a time, except for the shared `shield`
    // object, which `with shield:` blocks may nest.
    std::vector<rt::CancelScope*> open;
    // Parallel to `open`: the nursery of tasks started inside the block (nullptr for shield
    // blocks). The spec's "cancels the block and everything started in it": tasks spawned or
    // deferred in the block belong to it, are cancelled with it, and the block ends when they do.
    std::vector<rt::Scope*> nurseries;
    bool expired = false, cancelled = false, cancel_requested = false;
    explicit CancelScopeObj(ScopeKind k);
    ~CancelScopeObj() override {
        for (size_t i = open.size(); i-- > 0;) {
            delete nurseries[i];
            delete open[i];
        }
    }
    rt::CancelScope* scope() const { return open.empty() ? nullptr : open.back(); }
};

Value cs_enter(CallContext&, Value& self, const CallArgs&) {
    auto* c = self.as<CancelScopeObj>();
    if (!c->open.empty() && c->kind != ScopeKind::Shield)
        throw WeftError(ErrorKind::Error, "a cancel scope can be entered only once at a time");
    if (!in_task()) throw WeftError(ErrorKind::Error, "cancel scopes need a running program");
    rt::CancelScopeOptions o;
    if (c->seconds >= 0) o.timeout = c->seconds;
    if (c->deadline_ns >= 0) o.deadline_ns = c->deadline_ns;
    o.shield = c->kind == ScopeKind::Shield;
    c->open.push_back(new rt::CancelScope(o));
    c->nurseries.push_back(c->kind == ScopeKind::Shield ? nullptr : new rt::Scope(rt::ScopeMode::CollectAll));
    if (c->cancel_requested) c->open.back()->cancel();
    return self;
}

// __exit__(err): a Cancelled error caused by this scope ends the block (quietly,
// or as TimeoutError for `timeout`); anything else propagates.
Value cs_exit(CallContext&, Value& self, const CallArgs& a) {
    auto* c = self.as<CancelScopeObj>();
    if (c->open.empty()) return Value::boolean(false);
    std::unique_ptr<rt::Scope> nursery(c->nurseries.back());
    c->nurseries.pop_back();
    std::unique_ptr<rt::CancelScope> s(c->open.back());
    c->open.pop_back();
    Value err = a.pos.empty() ? Value() : a.pos[0];
    // The block's tasks: on a normal end, wait for them (the deadline still applies); when the
    // block failed, the nursery's destructor cancels and awaits them, and the block's error wins.
    std::exception_ptr children_error;
    bool join_cancelled = false;
    if (nursery && err.is_none()) {
        try {
            nursery->join();
        } catch (const rt::Cancelled&) {
            join_cancelled = true;
        } catch (const rt::ErrorGroup& g) {
            children_error = g.errors().size() == 1 ? g.errors()[0] : std::make_exception_ptr(rt::ErrorGroup(g.errors(), false));
        } catch (...) {
            children_error = std::current_exception();
        }
    }
    nursery.reset();
    bool mine = s->cancel_called();
    c->expired = s->deadline_expired();
    c->cancelled = mine;
    s.reset();  // leave the scope before deciding (its cancellation no longer applies)
    if (children_error) std::rethrow_exception(children_error);
    if (join_cancelled) {
        if (!mine) throw rt::Cancelled();  // cancelled from outside while waiting for the tasks
        err = make_error(ErrorKind::Cancelled, "cancelled");
    }
    if (!is_cancelled_error(err) || !mine) return Value::boolean(false);
    if (c->kind == ScopeKind::Timeout && c->expired) {
        Value te = make_error(ErrorKind::TimeoutError, "deadline of " + (c->seconds >= 0 ? float_repr(c->seconds) + " s" : std::string("the scope")) + " exceeded");
        // Its trace is the cancellation's: where the block was waiting when the deadline hit
        // (down to the call in a deferred call or task it waited for), not the `with` line.
        auto* from = err.as<StructObj>();
        if (from->error && !from->error->trace.empty()) te.as<StructObj>()->error->trace = from->error->trace;
        throw WeftError(te);
    }
    return Value::boolean(true);
}

Value cs_cancel(CallContext&, Value& self, const CallArgs&) {
    auto* c = self.as<CancelScopeObj>();
    c->cancel_requested = true;
    if (c->scope()) c->scope()->cancel();
    return Value();
}

const MethodInfo kCancelScopeMethods[] = {
    {"__enter__", cs_enter, false}, {"__exit__", cs_exit, false}, {"cancel", cs_cancel, false}, {nullptr, nullptr, false},
};

bool cs_attr(const OpaqueObj* self, std::string_view n, Value& out) {
    auto* c = static_cast<const CancelScopeObj*>(self);
    if (n == "expired") {
        out = Value::boolean(c->scope() ? c->scope()->deadline_expired() : c->expired);
        return true;
    }
    if (n == "cancelled" || n == "cancel_called") {
        out = Value::boolean(c->scope() ? c->scope()->cancel_called() : (c->cancelled || c->cancel_requested));
        return true;
    }
    return false;
}

// @timeout(5s) as a decorator: the function runs with that deadline on every call.
Value timed_call(CallContext& cx, Value& self, const CallArgs& a) {
    auto& parts = self.as<TupleObj>()->items;  // (function, seconds)
    double seconds = parts[1].as_number();
    Value out;
    bool finished;
    {
        finished = rt::move_on_after(seconds, [&](rt::CancelScope&) {
            try {
                out = cx.call_kw(parts[0], a.pos, a.kw);
            } catch (WeftError& e) {
                if (is_cancelled_error(e.error)) throw rt::Cancelled();  // let the scope see its own cancellation
                throw;
            }
        });
    }
    if (!finished) throw WeftError(ErrorKind::TimeoutError, "call exceeded its timeout of " + float_repr(seconds) + " s");
    return out;
}

Value cs_call(OpaqueObj* self, CallContext&, std::span<const Value> pos) {
    auto* c = static_cast<CancelScopeObj*>(self);
    if (c->kind != ScopeKind::Timeout || c->seconds < 0 || pos.size() != 1)
        type_err("only timeout(d) can decorate a function: @timeout(5s)");
    auto* n = new NativeObj("timeout", nullptr);
    n->method = timed_call;
    n->kwargs = kAnyKeywords;  // passed on to the decorated function
    n->self = make_tuple({pos[0], Value::number(c->seconds)});
    return Value::adopt(n);
}

const OpaqueClass kCancelScopeClass{"cancel_scope", kCancelScopeMethods, cs_attr, nullptr, nullptr, nullptr, cs_call};
CancelScopeObj::CancelScopeObj(ScopeKind k) : OpaqueObj(&kCancelScopeClass), kind(k) {}

Value make_scope(ScopeKind k, const CallArgs& a, const char* fn) {
    auto* c = new CancelScopeObj(k);
    Value v = Value::adopt(c);
    if (k == ScopeKind::Timeout || k == ScopeKind::MoveOn) {
        if (a.pos.size() != 1) type_err(std::string(fn) + "() takes a duration in seconds");
        c->seconds = std::max(0.0, seconds_arg(a.pos[0], fn));
    }
    return v;
}

Value bi_timeout(CallContext&, const CallArgs& a) { return make_scope(ScopeKind::Timeout, a, "timeout"); }
Value bi_move_on_after(CallContext&, const CallArgs& a) { return make_scope(ScopeKind::MoveOn, a, "move_on_after"); }
Value bi_cancel_scope(CallContext&, const CallArgs& a) { return make_scope(ScopeKind::Cancel, a, "cancel_scope"); }
Value bi_deadline(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("deadline() takes an absolute monotonic time in seconds");
    auto* c = new CancelScopeObj(ScopeKind::Timeout);
    Value v = Value::adopt(c);
    c->deadline_ns = std::int64_t(seconds_arg(a.pos[0], "deadline") * 1e9);
    return v;
}

// ---------------------------------------------------------------------------
// sleep, race, parallel_map

Value bi_sleep(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("sleep() takes one number of seconds");
    double s = seconds_arg(a.pos[0], "sleep()");
    if (s < 0) throw WeftError(ErrorKind::ValueError, "sleep length must be non-negative");
    if (in_task())
        rt::sleep_for(s);
    else
        std::this_thread::sleep_for(std::chrono::duration<double>(s));
    return Value();
}

Value bi_monotonic(CallContext&, const CallArgs&) { return Value::number(double(rt::now_ns()) / 1e9); }

// @sequential: the function runs with no deferral. Calls are not deferred
// implicitly yet, so the decorator returns the function unchanged.
Value bi_sequential(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("@sequential decorates one function");
    return a.pos[0];
}

}  // namespace

void register_parallel_builtins(Vm& vm);

// Exposed to the interpreter (vm/interp.cpp).
Value make_lazy(const Value& thunk, std::shared_ptr<const CapabilitySet> caps) {
    auto* p = new PromiseObj(PromiseObj::Kind::Lazy);
    p->thunk = thunk;
    p->lazy_caps = std::move(caps);
    return Value::adopt(p);
}

void register_concurrency_builtins(Vm& vm) {
    install_pending_hooks();
    // The keywords each takes (NativeObj::kwargs); the interpreter rejects any other.
    auto native = [&](const char* n, NativeFn f, const char* kwargs = nullptr) {
        auto* o = new NativeObj(n, f);
        o->kwargs = kwargs;
        vm.add_builtin(n, Value::adopt(o));
    };
    native("channel", bi_channel, "capacity unbounded");
    native("__select__", bi_select_stmt);
    native("select", bi_select_fn, "timeout");
    native("after", bi_after);
    native("atom", bi_atom, "validator");
    native("timeout", bi_timeout);
    native("move_on_after", bi_move_on_after);
    native("cancel_scope", bi_cancel_scope);
    native("deadline", bi_deadline);
    {
        auto* sleep_fn = new NativeObj("sleep", bi_sleep);
        sleep_fn->blocking = true;  // deferred like a Weft function (spec section 5)
        vm.add_builtin("sleep", Value::adopt(sleep_fn));
    }
    native("monotonic", bi_monotonic);
    native("sequential", bi_sequential);
    register_parallel_builtins(vm);
    vm.add_builtin("shield", Value::adopt(new CancelScopeObj(ScopeKind::Shield)));
}

}  // namespace weft

// ===========================================================================
// Parallel operations (spec section 8): race, parallel_map/filter/for_each,
// spawn_link, attempt, retry, worker_pool, pipelines.

namespace weft {

namespace {

Interp& interp_of(CallContext& cx) { return static_cast<Interp&>(cx); }

Value ok_dict(const Value& v) {
    Value d = make_dict();
    set_item(d, make_str("ok"), v);
    return d;
}
Value error_dict(const Value& e) {
    Value d = make_dict();
    set_item(d, make_str("error"), e);
    return d;
}

// The body of one item of a parallel operation: the call, bounded by the per-item timeout
// (< 0: none), counted on the progress bar when it ends (nullptr: no bar).
struct ItemBody {
    CallBody body;
    double timeout;
    ProgressBar* bar;
    Value operator()() {
        struct Tick {
            ProgressBar* bar;
            ~Tick() {
                if (bar) bar->tick();
            }
        } tick{bar};
        if (timeout < 0) return body();
        Value out;
        bool finished = rt::move_on_after(timeout, [&](rt::CancelScope&) { out = body(); });
        if (!finished) throw WeftError(ErrorKind::TimeoutError, "item timed out after " + float_repr(timeout) + " s");
        return out;
    }
};

// Runs `fn(*args)` in a new task that belongs to `scope`.
rt::TaskRef spawn_in(rt::Scope& scope, Interp& in, const Value& fn, std::vector<Value> args, double timeout,
                     ProgressBar* bar = nullptr) {
    CallBody body{&in.vm(), fn, std::move(args), {}, {}, in.capabilities()};
    std::string_view name = callee_name(fn);
    if (timeout >= 0 || (bar && bar->active())) return scope.spawn(ItemBody{std::move(body), timeout, bar}, name).ref();
    return scope.spawn(std::move(body), name).ref();
}

// Waits for an item's task; its value, or None with its error (as raised here) in *err_out.
Value task_value(Interp& in, const rt::TaskRef& t, Value* err_out) {
    limits::join_within_default_timeout(*t);
    if (std::exception_ptr e = t->error()) {
        t->mark_observed();
        Value err = in.runtime_error_value(e);
        *err_out = is_cancelled_error(err) ? err : note_forced(in, err, t->label());
        return Value();
    }
    return *static_cast<Value*>(t->result_slot());
}

struct MapOptions {
    size_t workers = 64;
    double timeout = -1;
    bool collect = false;
    bool progress = false;
    const char* name = "parallel_map";
};

// errors= of the parallel operations: true for "collect" / "partial" (failed items are
// collected), false for "raise" / "fail_fast" or when absent; anything else raises ValueError
// with `message`.
bool collects_errors(const CallArgs& a, const std::string& message) {
    const Value* e = a.find_kw("errors");
    if (!e || e->is_none()) return false;
    std::string m = to_str(*e);
    if (m == "collect" || m == "partial") return true;
    if (m != "raise" && m != "fail_fast") throw WeftError(ErrorKind::ValueError, message);
    return false;
}

MapOptions map_options(const CallArgs& a, const char* fn) {
    MapOptions o;
    o.name = fn;
    if (const Value* w = a.find_kw("workers"); w && !w->is_none()) {
        if (!w->is_int() || w->as_int() < 1) throw WeftError(ErrorKind::ValueError, std::string(fn) + "(): workers must be an int >= 1");
        o.workers = size_t(w->as_int());
    }
    o.workers = limits::cap_workers(o.workers);
    if (const Value* p = a.find_kw("progress"); p && !p->is_none()) o.progress = truthy(*p);
    if (const Value* t = a.find_kw("timeout"); t && !t->is_none()) o.timeout = seconds_arg(*t, "timeout");
    o.collect = collects_errors(a, std::string(fn) + "(): errors must be \"raise\" or \"collect\"");
    return o;
}

// The common engine: f over items, at most `workers` at once, results in order.
std::vector<Value> run_parallel(Interp& in, const Value& fn, const std::vector<Value>& items, const MapOptions& o,
                                std::vector<bool>* failed) {
    size_t n = items.size();
    std::vector<Value> results(n);
    if (failed) failed->assign(n, false);
    if (n == 0) return results;
    // Output printed before the call must appear above the bar, not after it.
    if (o.progress) in.vm().flush_stdout();
    // Declared before the scope so that it outlives every item's task (they tick it).
    ProgressBar bar(o.name, n, o.progress);
    rt::Scope scope(o.collect ? rt::ScopeMode::CollectAll : rt::ScopeMode::FailFast);
    std::vector<rt::TaskRef> tasks(n);
    size_t next = 0, done = 0;
    Value first_error;
    auto finish = [&](size_t i) {
        Value err;
        Value v = task_value(in, tasks[i], &err);
        tasks[i] = rt::TaskRef();
        if (!err.is_none()) {
            if (failed) (*failed)[i] = true;
            if (!o.collect || is_system_exit(err)) {  // an exit() is not an item's failure
                if (first_error.is_none()) first_error = err;
                return false;
            }
            results[i] = err;
        } else {
            results[i] = v;
        }
        return true;
    };
    std::vector<rt::TaskRef> all(n);
    try {
        while (done < n) {
            while (next < n && next - done < o.workers) {
                tasks[next] = spawn_in(scope, in, fn, {items[next]}, o.timeout, &bar);
                all[next] = tasks[next];
                ++next;
            }
            if (!finish(done++)) break;
        }
    } catch (const rt::Cancelled&) {
        if (!scope.cancel_called()) unwind_scope(scope);
        // A task failed (fail-fast cancelled us): raise the first failure in input order.
        try {
            scope.join();
        } catch (...) {
        }
        for (auto& t : all) {
            if (!t || !t->done() || !t->error()) continue;
            Value err = in.runtime_error_value(t->error());
            if (!is_cancelled_error(err)) throw WeftError(note_forced(in, err, t->label()));
        }
        throw;
    } catch (...) {
        unwind_scope(scope);
    }
    if (!first_error.is_none()) {
        scope.cancel();
        try {
            scope.join();
        } catch (...) {
        }
        throw WeftError(first_error);
    }
    try {
        scope.join();
    } catch (...) {
        if (!o.collect) throw;
    }
    bar.finish();
    return results;
}

}  // namespace

// Set by the cluster layer (cluster/cluster.cpp) when the program has one: runs the items of a
// parallel operation with `cluster=True` on cluster workers (docs/cluster.md). One result per
// item in input order; with errors="collect" a failed item's slot holds its error and
// (*failed)[i] is set. Null: no cluster layer linked.
std::vector<Value> (*cluster_parallel_hook)(CallContext& cx, const Value& fn, const std::vector<Value>& items,
                                            const CallArgs& a, const char* op, bool collect, double timeout,
                                            std::vector<bool>* failed) = nullptr;

namespace {

// run_parallel, or the cluster's workers when the call says cluster=True.
std::vector<Value> run_parallel_or_cluster(Interp& in, const CallArgs& a, const Value& fn, const std::vector<Value>& items,
                                           const MapOptions& o, std::vector<bool>* failed) {
    const Value* c = a.find_kw("cluster");
    if (!c || c->is_none() || !truthy(*c)) {
        for (const char* k : {"retries", "pool"})
            if (const Value* r = a.find_kw(k); r && !r->is_none())
                throw WeftError(ErrorKind::TypeError, std::string(o.name) + "(): " + k + "= needs cluster=True");
        return run_parallel(in, fn, items, o, failed);
    }
    if (!cluster_parallel_hook)
        throw WeftError(ErrorKind::ClusterError, std::string(o.name) + "(cluster=True): this weft was built without cluster support (libnats)");
    std::vector<bool> local_failed;
    if (!failed) failed = &local_failed;
    return cluster_parallel_hook(in, fn, items, a, o.name, o.collect, o.timeout, failed);
}

Value bi_parallel_map(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("parallel_map(f, xs, workers=None, timeout=None, errors=\"raise\", progress=False)");
    Interp& in = interp_of(cx);
    auto items = collect(cx, a.pos[1]);
    return make_list(run_parallel_or_cluster(in, a, a.pos[0], items, map_options(a, "parallel_map"), nullptr));
}

Value bi_parallel_filter(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("parallel_filter(pred, xs, ...)");
    Interp& in = interp_of(cx);
    auto items = collect(cx, a.pos[1]);
    MapOptions o = map_options(a, "parallel_filter");
    std::vector<bool> failed;
    auto keep = run_parallel_or_cluster(in, a, a.pos[0], items, o, &failed);
    std::vector<Value> out;
    for (size_t i = 0; i < items.size(); ++i)
        if (!failed[i] && truthy(keep[i])) out.push_back(items[i]);
    return make_list(std::move(out));
}

Value bi_parallel_for_each(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("parallel_for_each(f, xs, ...)");
    Interp& in = interp_of(cx);
    auto items = collect(cx, a.pos[1]);
    MapOptions o = map_options(a, "parallel_for_each");
    auto r = run_parallel_or_cluster(in, a, a.pos[0], items, o, nullptr);
    if (o.collect) {
        std::vector<Value> errs;
        for (auto& v : r)
            if (v.is(ObjType::Struct) && v.as<StructObj>()->error) errs.push_back(v);
        return make_list(std::move(errs));
    }
    return Value();
}

// race(p1, p2, ...): the first successful value; the others are cancelled and awaited.
// The first of `args` to succeed: (its index, its value). The others are cancelled and awaited;
// all failing raises an ErrorGroup. race() and the `race:` block (__race__).
std::pair<size_t, Value> race_first(Interp& in, std::span<const Value> args) {
    std::vector<PromiseObj*> ps;
    for (size_t i = 0; i < args.size(); ++i) {
        const Value& v = args[i];
        if (!v.is(ObjType::Promise)) return {i, v};  // an already-available value wins at once
        ps.push_back(v.as<PromiseObj>());
    }
    // Deferred calls still kept as records race as tasks.
    for (auto* p : ps) start_pending(p);
    auto winner = rt::Channel<std::int64_t>::make(ps.size());
    rt::Scope watchers(rt::ScopeMode::CollectAll);
    for (size_t i = 0; i < ps.size(); ++i) {
        if (ps[i]->kind != PromiseObj::Kind::Task) continue;
        rt::TaskRef t = ps[i]->task;
        watchers.spawn([t, winner, i]() mutable {
            try {
                t->join();
            } catch (...) {
            }
            winner.send(std::int64_t(i));
        });
    }
    std::vector<Value> errors;
    Value result;
    bool have = false;
    size_t won = 0;
    size_t pending = 0;
    for (auto* p : ps) pending += p->kind == PromiseObj::Kind::Task;
    for (size_t i = 0; i < ps.size() && !have; ++i) {
        if (ps[i]->kind == PromiseObj::Kind::Lazy) {
            try {
                result = force_promise(in, ps[i]);
                have = true;
                won = i;
            } catch (WeftError& e) {
                errors.push_back(in.error_value(e));
            }
        }
    }
    while (!have && pending > 0) {
        std::int64_t i = winner.recv();
        --pending;
        try {
            result = force_promise(in, ps[size_t(i)]);
            have = true;
            won = size_t(i);
        } catch (WeftError& e) {
            errors.push_back(in.error_value(e));
        }
    }
    for (auto* p : ps)
        if (p->kind == PromiseObj::Kind::Task) p->task->cancel();
    for (auto* p : ps)
        if (p->kind == PromiseObj::Kind::Task) {
            p->task->join();
            p->task->mark_observed();
        }
    watchers.join();
    if (have) return {won, result};
    Value g = make_error(ErrorKind::ErrorGroup, "all " + std::to_string(errors.size()) + " race branches failed");
    g.as<StructObj>()->error->errors = std::move(errors);
    throw WeftError(g);
}

Value bi_race(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty()) type_err("race() needs at least one argument");
    return race_first(interp_of(cx), a.pos).second;
}

// The `race:` block (compiler/codegen.cpp race_stmt): its branches' tasks -> (index, value).
Value bi_race_block(CallContext& cx, const CallArgs& a) {
    auto [i, v] = race_first(interp_of(cx), a.pos);
    return make_tuple({Value::integer(int64_t(i)), v});
}

Value bi_attempt(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty()) type_err("attempt(f, *args) needs a function");
    Interp& in = interp_of(cx);
    std::vector<Value> args(a.pos.begin() + 1, a.pos.end());
    try {
        return ok_dict(in.call_kw(a.pos[0], args, a.kw));
    } catch (WeftError& e) {
        Value err = in.error_value(e);
        if (is_cancelled_error(err) || is_system_exit(err)) throw;  // not errors to report
        return error_dict(err);
    }
}

Value bi_spawn_link(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty()) type_err("spawn_link(f, *args) needs a function");
    Interp& in = interp_of(cx);
    auto* c = new ChannelObj();
    Value chv = Value::adopt(c);
    c->ch = rt::Channel<Value>::make(1);
    CallBody body{&in.vm(), a.pos[0], std::vector<Value>(a.pos.begin() + 1, a.pos.end()), {}, {}, in.capabilities()};
    rt::Channel<Value> ch = c->ch;
    Vm* vm = &in.vm();
    rt::spawn(
        [body = std::move(body), ch, vm]() mutable {
            Value msg;
            try {
                msg = ok_dict(body());
            } catch (WeftError& e) {
                msg = error_dict(e.error.is_none() ? vm->make_error(e.kind, e.message) : e.error);
            } catch (rt::Cancelled&) {
                ch.close();
                throw;
            }
            share(msg);
            ch.send(msg);
            ch.close();
        },
        callee_name(a.pos[0]));
    return chv;
}

// retry(f, attempts=3, backoff=0.1, max_backoff=5s, on=[Error]): calls f() until it
// succeeds, sleeping backoff * 2^k (with jitter, capped) between attempts.
Value bi_retry(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty()) type_err("retry(f, attempts=3, backoff=0.1, max_backoff=5, on=[Error])");
    Interp& in = interp_of(cx);
    int64_t attempts = 3;
    double backoff = 0.1, max_backoff = 5.0;
    if (const Value* v = a.find_kw("attempts")) {
        if (!v->is_int() || v->as_int() < 1) throw WeftError(ErrorKind::ValueError, "retry(): attempts must be >= 1");
        attempts = v->as_int();
    }
    if (const Value* v = a.find_kw("backoff")) backoff = seconds_arg(*v, "backoff");
    if (const Value* v = a.find_kw("max_backoff")) max_backoff = seconds_arg(*v, "max_backoff");
    Value on;
    if (const Value* v = a.find_kw("on")) on = *v;
    std::vector<Value> args(a.pos.begin() + 1, a.pos.end());
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    for (int64_t k = 0;; ++k) {
        try {
            return in.call(a.pos[0], args);
        } catch (WeftError& e) {
            Value err = in.error_value(e);
            bool retryable = !is_cancelled_error(err) && !is_system_exit(err);
            if (retryable && !on.is_none()) {
                retryable = false;
                std::vector<Value> types = on.is(ObjType::List) || on.is(ObjType::Tuple) ? collect(cx, on) : std::vector<Value>{on};
                for (auto& t : types)
                    if (t.is(ObjType::StructType) && err.as<StructObj>()->type->is_subtype_of(t.as<StructTypeObj>()))
                        retryable = true;
            }
            if (!retryable || k + 1 >= attempts) throw WeftError(err);
            double d = std::min(max_backoff, backoff * double(int64_t(1) << std::min<int64_t>(k, 30)));
            d *= 0.5 + std::uniform_real_distribution<double>(0, 0.5)(rng);
            if (in_task()) rt::sleep_for(d);
        }
    }
}

// ---------------------------------------------------------------------------
// Pipelines: f | g composes, x | f applies, a list of callables fans out.

bool is_callable(const Value& v) {
    if (!v.is_obj()) return false;
    switch (v.as_obj()->type) {
        case ObjType::Function:
        case ObjType::Native:
        case ObjType::BoundMethod:
        case ObjType::StructType:
            return true;
        default:
            return false;
    }
}

bool is_stage(const Value& v) {
    if (is_callable(v)) return true;
    if (!v.is(ObjType::List)) return false;
    auto& items = v.as<ListObj>()->items;
    if (items.empty()) return false;
    for (auto& x : items)
        if (!is_callable(x)) return false;
    return true;
}

// Applies one stage to a value: a callable is called; a list fans out concurrently.
Value run_fanout(Interp& in, const std::vector<Value>& fns, const Value& x, double timeout, bool collect,
                 int64_t retries, double backoff);
Value apply_stage(Interp& in, const Value& stage, const Value& x) {
    if (stage.is(ObjType::List)) return run_fanout(in, stage.as<ListObj>()->items, x, -1, false, 0, 0);
    return in.call(stage, std::span<const Value>(&x, 1));
}

Value composed_call(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.kw.empty()) type_err("a pipeline takes exactly one argument");
    Interp& in = interp_of(cx);
    auto& stages = self.as<TupleObj>()->items;
    Value x = a.pos[0];
    for (auto& s : stages) x = apply_stage(in, s, x);
    return x;
}

}  // namespace

// `l | r` for pipelines. Returns false (not handled) when neither side is a
// pipeline stage, so `int | int`, `set | set` and `dict | dict` keep their meaning.
bool pipe_op(Interp& in, const Value& l, const Value& r, Value& out) {
    bool lstage = is_stage(l), rstage = is_stage(r);
    if (!rstage) return false;
    if (lstage) {
        std::vector<Value> stages;
        auto add = [&](const Value& v) {
            if (v.is(ObjType::Native) && v.as<NativeObj>()->method == composed_call) {
                for (auto& s : v.as<NativeObj>()->self.as<TupleObj>()->items) stages.push_back(s);
            } else {
                stages.push_back(v);
            }
        };
        add(l);
        add(r);
        auto* n = new NativeObj("pipeline", nullptr);
        n->method = composed_call;
        n->self = make_tuple(std::move(stages));
        out = Value::adopt(n);
        return true;
    }
    out = apply_stage(in, r, l);
    return true;
}

namespace {

// Runs every function of a fan-out stage on `x` concurrently; results in order.
// Each branch is retried up to `retries` times and bounded by `timeout` (< 0: none).
// Fail-fast cancels the other branches on the first failure and raises it;
// `collect` puts error values in the failed slots instead.
Value run_fanout(Interp& in, const std::vector<Value>& fns, const Value& x, double timeout, bool collect,
                 int64_t retries, double backoff) {
    std::vector<Value> results(fns.size());
    rt::Scope scope(collect ? rt::ScopeMode::CollectAll : rt::ScopeMode::FailFast);
    std::vector<rt::TaskRef> ts;
    for (auto& f : fns) {
        CallBody body{&in.vm(), f, {x}, {}, {}, in.capabilities()};
        body.reusable = retries > 0;
        ts.push_back(scope
                         .spawn(
                             [body = std::move(body), retries, backoff, timeout]() mutable -> Value {
                                 for (int64_t k = 0;; ++k) {
                                     try {
                                         if (timeout < 0) return body();
                                         Value out;
                                         if (!rt::move_on_after(timeout, [&](rt::CancelScope&) { out = body(); }))
                                             throw WeftError(ErrorKind::TimeoutError, "stage timed out");
                                         return out;
                                     } catch (WeftError&) {
                                         if (k >= retries) throw;
                                         rt::sleep_for(backoff * double(int64_t(1) << std::min<int64_t>(k, 20)));
                                     }
                                 }
                             },
                             callee_name(f))
                         .ref());
    }
    Value first_err;
    try {
        for (size_t i = 0; i < ts.size(); ++i) {
            Value err;
            Value v = task_value(in, ts[i], &err);
            if (!err.is_none()) {
                if (!collect || is_system_exit(err)) {  // an exit() is not an item's failure
                    if (first_err.is_none()) first_err = err;
                    scope.cancel();
                    continue;
                }
                results[i] = err;
            } else {
                results[i] = v;
            }
        }
    } catch (...) {
        unwind_scope(scope);
    }
    try {
        scope.join();
    } catch (...) {
    }
    if (!first_err.is_none()) throw WeftError(first_err);
    return make_list(std::move(results));
}

// parallel(f, g, ..., workers=, timeout=, errors="fail_fast"|"partial", retries=0, backoff=0.5)
Value parallel_stage_call(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("a parallel(...) stage takes exactly one argument");
    auto& parts = self.as<TupleObj>()->items;  // (functions, workers, timeout, partial, retries, backoff)
    return run_fanout(interp_of(cx), parts[0].as<ListObj>()->items, a.pos[0], parts[2].as_number(),
                      parts[3].as_bool(), parts[4].as_int(), parts[5].as_number());
}

Value bi_parallel(CallContext&, const CallArgs& a) {
    if (a.pos.empty()) type_err("parallel() needs at least one function");
    int64_t workers = 64, retries = 0;
    double timeout = -1, backoff = 0.5;
    if (const Value* v = a.find_kw("workers"); v && !v->is_none()) workers = v->as_int();
    if (const Value* v = a.find_kw("timeout"); v && !v->is_none()) timeout = seconds_arg(*v, "timeout");
    if (const Value* v = a.find_kw("retries"); v && v->is_int()) retries = v->as_int();
    if (const Value* v = a.find_kw("backoff"); v && v->is_number()) backoff = v->as_number();
    bool partial = collects_errors(a, "parallel(): errors must be \"fail_fast\" or \"partial\"");
    auto* n = new NativeObj("parallel", nullptr);
    n->method = parallel_stage_call;
    n->self = make_tuple({make_list(std::vector<Value>(a.pos.begin(), a.pos.end())), Value::integer(workers),
                          Value::number(timeout), Value::boolean(partial), Value::integer(retries), Value::number(backoff)});
    return Value::adopt(n);
}

// ---------------------------------------------------------------------------
// worker_pool(n): at most n submitted calls run at once (a counting semaphore
// made of a channel holding n tokens).

struct WorkerPoolObj : OpaqueObj {
    rt::Channel<std::int64_t> tokens;
    rt::SpinLock lock;         // guards `tasks` (tasks on several threads submit)
    std::vector<Value> tasks;  // handles of submitted calls, for shutdown()
    std::atomic<bool> closed{false};
    WorkerPoolObj();
};

struct PoolBody {
    CallBody call;
    rt::Channel<std::int64_t> tokens;
    Value operator()() {
        tokens.recv();  // wait for a free worker slot
        struct Give {
            rt::Channel<std::int64_t>& t;
            ~Give() {
                try {
                    t.send(1);
                } catch (...) {
                }
            }
        } give{tokens};
        return call();
    }
};

Value pool_submit(CallContext& cx, Value& self, const CallArgs& a) {
    auto* pool = self.as<WorkerPoolObj>();
    if (pool->closed) throw WeftError(ErrorKind::Error, "submit() on a worker pool that was shut down");
    if (a.pos.empty()) type_err("submit(f, *args) needs a function");
    Interp& in = interp_of(cx);
    std::vector<std::string> names;
    std::vector<Value> values;
    for (auto& k : a.kw) {
        names.emplace_back(k.name);
        values.push_back(k.value);
    }
    CallBody body{&in.vm(), a.pos[0], std::vector<Value>(a.pos.begin() + 1, a.pos.end()), names, values,
                  in.capabilities()};
    auto* p = new PromiseObj(PromiseObj::Kind::Task);
    p->is_handle = true;
    Value pv = Value::adopt(p);
    p->task = rt::spawn(PoolBody{std::move(body), pool->tokens}, callee_name(a.pos[0])).ref();
    std::lock_guard<rt::SpinLock> g(pool->lock);
    pool->tasks.push_back(pv);
    return pv;
}

Value pool_map(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 2) type_err("map(f, xs) takes a function and an iterable");
    Interp& in = interp_of(cx);
    std::vector<Value> handles;
    for (auto& x : collect(cx, a.pos[1])) {
        Value args[2] = {a.pos[0], x};
        handles.push_back(pool_submit(cx, self, CallArgs{args, {}}));
    }
    std::vector<Value> out;
    for (auto& h : handles) out.push_back(force_promise(in, h.as<PromiseObj>()));
    return make_list(std::move(out));
}

Value pool_shutdown(CallContext&, Value& self, const CallArgs& a) {
    auto* pool = self.as<WorkerPoolObj>();
    pool->closed = true;
    const Value* wait = a.pos.empty() ? a.find_kw("wait") : &a.pos[0];
    std::vector<Value> submitted;
    {
        std::lock_guard<rt::SpinLock> g(pool->lock);
        submitted = pool->tasks;
    }
    if (!wait || truthy(*wait)) {
        // Wait for every submitted call; their errors surface where their results are used.
        for (auto& t : submitted) t.as<PromiseObj>()->task->join();
    } else {
        for (auto& t : submitted) t.as<PromiseObj>()->task->cancel();
    }
    return Value();
}

Value pool_enter(CallContext&, Value& self, const CallArgs&) { return self; }

Value pool_exit(CallContext& cx, Value& self, const CallArgs&) {
    pool_shutdown(cx, self, CallArgs{});
    return Value::boolean(false);
}

const MethodInfo kPoolMethods[] = {
    {"submit", pool_submit, false, kAnyKeywords},  // passed on to the submitted call
    {"map", pool_map, false},
    {"shutdown", pool_shutdown, false, "wait"},
    {"__enter__", pool_enter, false}, {"__exit__", pool_exit, false}, {nullptr, nullptr, false},
};
void pool_share_children(OpaqueObj* self) {
    auto* pool = static_cast<WorkerPoolObj*>(self);
    std::lock_guard<rt::SpinLock> g(pool->lock);
    share_all(pool->tasks);
}
const OpaqueClass kPoolClass{"worker_pool", kPoolMethods, nullptr, nullptr, nullptr, nullptr, nullptr,
                             pool_share_children};
WorkerPoolObj::WorkerPoolObj() : OpaqueObj(&kPoolClass) {}

Value bi_worker_pool(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.pos[0].is_int() || a.pos[0].as_int() < 1)
        throw WeftError(ErrorKind::ValueError, "worker_pool(n) needs an int n >= 1");
    auto* pool = new WorkerPoolObj();
    Value v = Value::adopt(pool);
    int64_t n = a.pos[0].as_int();
    pool->tokens = rt::Channel<std::int64_t>::make(size_t(n));
    for (int64_t i = 0; i < n; ++i) pool->tokens.send(1);
    return v;
}

// set_max_workers(n): at most n items of any parallel operation run at once from now on
// (their own workers= still applies when smaller). Weft tasks share one worker thread in this
// version, so no more threads than that are ever used.
Value bi_set_max_workers(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.pos[0].is_int() || a.pos[0].as_int() < 1)
        throw WeftError(ErrorKind::ValueError, "set_max_workers(n) needs an int >= 1");
    limits::set_max_workers(size_t(a.pos[0].as_int()));
    return Value();
}

// set_default_timeout(d): the bound, in seconds, of every wait without a timeout of its own
// (None or 0: no bound), as --default-timeout. Returns the previous value (None if none).
Value bi_set_default_timeout(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("set_default_timeout(seconds) takes one duration (or None)");
    double d = 0;
    if (!a.pos[0].is_none()) {
        d = seconds_arg(a.pos[0], "set_default_timeout()");
        if (d < 0) throw WeftError(ErrorKind::ValueError, "set_default_timeout(): the duration must be >= 0");
    }
    double old = limits::default_timeout();
    limits::set_default_timeout(d);
    return old > 0 ? Value::number(old) : Value();
}

// ---------------------------------------------------------------------------
// stream_map(f, in_ch, workers=4, ordered=False, buffer=workers, errors="raise")
//
// A coordinator task (a child of the caller's scope, so the caller's scope waits for it and
// sees its error) owns a nursery of `workers` worker tasks. Each worker keeps one interpreter
// and loops: take an item, call f, send the result. Unordered, workers read the input channel
// themselves and results come out as they are ready. Ordered, a dispatcher gives each item a
// one-value channel (its "slot") and queues the slots in input order; a collector empties the
// slots in that order, so results leave in input order while `workers` items are computed at
// once (the slot queue, `buffer` long, bounds how far ahead they may run).
//
// The output channel closes when the input is closed and drained and every item is out, or
// when the work fails. errors="raise": the first failure cancels the rest and is raised where
// the caller's scope ends; errors="collect": a failed item's error value is sent in its place.
// A consumer that stops early closes the output channel: workers then stop quietly.

struct StreamShared {
    Vm* vm;
    Value fn;
    std::shared_ptr<const CapabilitySet> caps;
    rt::Channel<Value> in, out;
    bool collect;
    CodeSite site;
};

using Slot = rt::Channel<Value>;

// Calls f(item) on the worker's interpreter; raises (annotated) unless errors="collect".
// What it returns or raises goes to other tasks (the consumer), so it is shared.
Value stream_call(Interp& in, StreamShared& sh, const Value& item) {
    try {
        Value r = in.call(sh.fn, std::span<const Value>(&item, 1));
        in.force(r);
        share(r);
        return r;
    } catch (WeftError& e) {
        Value err = in.error_value(e);
        if (is_cancelled_error(err)) throw rt::Cancelled();
        rt::Task* t = rt::current_task();
        err = note_task_failure(in, err, t ? t->label() : "stream_map", sh.site);
        share(err);
        if (sh.collect && !is_system_exit(err)) return err;  // an exit() is not an item's failure
        throw WeftError(err);
    }
}

struct StreamWorker {
    std::shared_ptr<StreamShared> sh;
    rt::Channel<std::pair<Value, Slot>> work;  // ordered mode; nil channel when unordered
    rt::Scope* scope;
    TaskContext ctx{nullptr, sh ? sh->site : CodeSite{}};
    Value operator()() {
        Interp* in = sh->vm->acquire_interp();
        struct Release {
            StreamWorker* w;
            Interp* in;
            ~Release() {
                w->ctx.interp = nullptr;
                w->sh->vm->release_interp(in);
            }
        } release{this, in};
        in->set_capabilities(sh->caps);
        ctx.interp = in;
        if (rt::Task* t = rt::current_task()) t->set_user_data(&ctx);
        return run_in_implicit_scope([&] {
            for (;;) {
                if (work.is_nil()) {
                    std::optional<Value> item = sh->in.recv_ok();
                    if (!item) break;
                    Value r = stream_call(*in, *sh, *item);
                    try {
                        sh->out.send(std::move(r));
                    } catch (rt::ChannelClosed&) {
                        scope->cancel();  // the consumer closed the output: stop everything
                        break;
                    }
                } else {
                    auto job = work.recv_ok();
                    if (!job) break;
                    job->second.send(stream_call(*in, *sh, job->first));
                }
            }
            return Value();
        });
    }
};

Value stream_coordinator(std::shared_ptr<StreamShared> sh, size_t workers, bool ordered, size_t buffer) {
    rt::Scope scope(sh->collect ? rt::ScopeMode::CollectAll : rt::ScopeMode::FailFast);
    try {
        if (!ordered) {
            for (size_t i = 0; i < workers; ++i)
                scope.spawn(StreamWorker{sh, {}, &scope}, callee_name(sh->fn));
        } else {
            auto work = rt::Channel<std::pair<Value, Slot>>::make(0);
            auto slots = rt::Channel<Slot>::make(std::max(buffer, workers));
            for (size_t i = 0; i < workers; ++i)
                scope.spawn(StreamWorker{sh, work, &scope}, callee_name(sh->fn));
            scope.spawn(
                [sh, work, slots]() mutable -> Value {  // dispatcher: input order -> slots
                    struct Close {
                        rt::Channel<std::pair<Value, Slot>>& w;
                        rt::Channel<Slot>& s;
                        ~Close() {
                            w.close();
                            s.close();
                        }
                    } close{work, slots};
                    while (auto item = sh->in.recv_ok()) {
                        Slot slot = Slot::make(1);
                        slots.send(slot);
                        work.send({std::move(*item), slot});
                    }
                    return Value();
                },
                "stream_map.dispatch");
            rt::Scope* sp = &scope;
            scope.spawn(
                [sh, slots, sp]() mutable -> Value {  // collector: slots in order -> output
                    while (auto slot = slots.recv_ok()) {
                        Value r = slot->recv();
                        try {
                            sh->out.send(std::move(r));
                        } catch (rt::ChannelClosed&) {
                            sp->cancel();
                            break;
                        }
                    }
                    return Value();
                },
                "stream_map.collect");
        }
        scope.join();
    } catch (...) {
        sh->out.close();
        unwind_scope(scope);
    }
    sh->out.close();
    return Value();
}

Value bi_stream_map(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 2)
        type_err("stream_map(f, in_ch, workers=4, ordered=False, buffer=workers, errors=\"raise\")");
    Interp& in = interp_of(cx);
    const Value& ch = a.pos[1];
    if (!ch.is(ObjType::Opaque) || ch.as<OpaqueObj>()->cls != &kChannelClass)
        type_err("stream_map() reads from a channel, not " + type_name(ch));
    size_t workers = 4;
    if (const Value* w = a.find_kw("workers"); w && !w->is_none()) {
        if (!w->is_int() || w->as_int() < 1) throw WeftError(ErrorKind::ValueError, "stream_map(): workers must be an int >= 1");
        workers = size_t(w->as_int());
    }
    workers = limits::cap_workers(workers);
    size_t buffer = workers;
    if (const Value* b = a.find_kw("buffer"); b && !b->is_none()) {
        if (!b->is_int() || b->as_int() < 0) throw WeftError(ErrorKind::ValueError, "stream_map(): buffer must be an int >= 0");
        buffer = size_t(b->as_int());
    }
    bool ordered = false;
    if (const Value* o = a.find_kw("ordered")) ordered = truthy(*o);
    bool collect = collects_errors(a, "stream_map(): errors must be \"raise\" or \"collect\"");
    auto* out = new ChannelObj();
    Value outv = Value::adopt(out);
    out->ch = rt::Channel<Value>::make(buffer);
    share(a.pos[0]);  // the workers call it on other threads
    auto sh = std::make_shared<StreamShared>(StreamShared{&in.vm(), a.pos[0], in.capabilities(),
                                                          ch.as<ChannelObj>()->ch, out->ch, collect, spawn_site_here()});
    limits::TaskSlot slot;  // the coordinator counts against --max-tasks like any task
    rt::spawn([sh, workers, ordered, buffer, slot = std::move(slot)]() mutable {
        struct Release {
            limits::TaskSlot& s;
            ~Release() { s.release(); }
        } release{slot};
        return stream_coordinator(sh, workers, ordered, buffer);
    }, "stream_map");
    return outv;
}

}  // namespace

void register_parallel_builtins(Vm& vm) {
    // The keywords each takes (NativeObj::kwargs); the interpreter rejects any other.
    auto native = [&](const char* n, NativeFn f, const char* kwargs = nullptr, bool lazy = false) {
        auto* o = new NativeObj(n, f);
        o->lazy_args = lazy;
        o->kwargs = kwargs;
        vm.add_builtin(n, Value::adopt(o));
    };
    // map_options, collects_errors; cluster and retries: run_parallel_or_cluster
    const char* kMapKeywords = "workers timeout errors progress cluster retries pool";
    native("parallel_map", bi_parallel_map, kMapKeywords);
    native("parallel_filter", bi_parallel_filter, kMapKeywords);
    native("parallel_for_each", bi_parallel_for_each, kMapKeywords);
    native("race", bi_race, nullptr, true);
    native("__race__", bi_race_block, nullptr, true);
    native("attempt", bi_attempt, kAnyKeywords);  // passed on to the call
    native("spawn_link", bi_spawn_link);
    native("retry", bi_retry, "attempts backoff max_backoff on");
    native("parallel", bi_parallel, "workers timeout retries backoff errors");
    native("set_max_workers", bi_set_max_workers);
    native("set_default_timeout", bi_set_default_timeout);
    native("stream_map", bi_stream_map, "workers buffer ordered errors");
    native("worker_pool", bi_worker_pool);
    native("tasks", tasks_builtin);
    limits::configure(vm.limits_state(), vm.options());
}

}  // namespace weft
