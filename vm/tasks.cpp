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

#include "vm/collections.h"
#include "vm/interp.h"
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

// The body of a task that calls a Weft callable.
struct CallBody {
    Vm* vm;
    Value fn;
    std::vector<Value> args;
    std::vector<std::string> kw_names;
    std::vector<Value> kw_values;
    std::shared_ptr<const CapabilitySet> caps;

    Value operator()() {
        Interp* in = vm->acquire_interp();
        struct Release {
            Vm* vm;
            Interp* in;
            ~Release() { vm->release_interp(in); }
        } release{vm, in};
        in->set_capabilities(caps);
        std::vector<KwArg> kws;
        for (size_t i = 0; i < kw_names.size(); ++i) kws.push_back(KwArg{kw_names[i], kw_values[i]});
        try {
            return in->call_kw(fn, args, kws);
        } catch (WeftError& e) {
            if (is_cancelled_error(e.error)) throw rt::Cancelled();
            throw;
        }
    }
};

std::string callee_name(const Value& fn) {
    if (fn.is(ObjType::Function)) {
        std::string n = fn.as<FunctionObj>()->proto->chunk->name;
        auto dot = n.rfind('.');
        return dot == std::string::npos ? n : n.substr(dot + 1);
    }
    if (fn.is(ObjType::Native)) return fn.as<NativeObj>()->name;
    if (fn.is(ObjType::BoundMethod)) return callee_name(fn.as<BoundMethodObj>()->func);
    return "task";
}

}  // namespace

PromiseObj::~PromiseObj() = default;

void share(const Value& v) {
    // Single worker today: nothing crosses threads, so nothing to mark yet.
    (void)v;
}

// ---------------------------------------------------------------------------
// Spawning and forcing

Value spawn_task(Interp& in, const Value& fn, std::vector<Value> args, std::vector<std::string> kw_names,
                 std::vector<Value> kw_values) {
    if (!in_task()) throw WeftError(ErrorKind::Error, "spawn outside a running program");
    auto* p = new PromiseObj(PromiseObj::Kind::Task);
    Value pv = Value::adopt(p);
    CallBody body{&in.vm(), fn, std::move(args), std::move(kw_names), std::move(kw_values), in.capabilities()};
    std::string name = callee_name(fn);
    auto handle = rt::spawn(std::move(body), name);
    p->task = handle.ref();
    p->name = p->task->label();
    return pv;
}

Value force_promise(Interp& in, PromiseObj* p) {
    if (!p->resolved) {
        if (p->kind == PromiseObj::Kind::Lazy) {
            if (p->running) throw WeftError(ErrorKind::RecursionError, "lazy value forced while it is being computed");
            p->running = true;
            try {
                Value thunk = p->thunk;
                p->value = in.call(thunk, {});
            } catch (WeftError& e) {
                p->error = in.error_value(e);
            }
            p->running = false;
            p->thunk = Value();
        } else {
            p->task->join();
            std::exception_ptr err = p->task->error();
            if (err) {
                p->task->mark_observed();
                try {
                    std::rethrow_exception(err);
                } catch (WeftError& e) {
                    p->error = in.error_value(e);
                } catch (...) {
                    p->error = in.runtime_error_value(std::current_exception());
                }
            } else {
                p->value = *static_cast<Value*>(p->task->result_slot());
            }
        }
        p->resolved = true;
    }
    if (!p->error.is_none()) throw WeftError(p->error);
    return p->value;
}

// ---------------------------------------------------------------------------
// Task handles: .done() .cancel() .result(timeout=) .id .state .name

namespace {

Value promise_method(Interp& in, PromiseObj* p, std::string_view name, const CallArgs& a, bool* handled) {
    *handled = true;
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
                throw WeftError(ErrorKind::TimeoutError, "task " + p->name + " did not finish within the timeout");
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
    if (name == "id") {
        out = make_str(p->name.empty() ? std::string("lazy") : p->name);
        return true;
    }
    if (name == "state") {
        const char* s = "pending";
        if (p->resolved || (p->kind == PromiseObj::Kind::Task && p->task->done())) {
            s = "done";
            if (p->kind == PromiseObj::Kind::Task && p->task->error()) s = "failed";
            if (!p->error.is_none()) s = "failed";
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
        nat->self = Value::borrow(p);
        out = Value::adopt(nat);
        return true;
    }
    return false;
}

Value call_promise_method(Interp& in, PromiseObj* p, std::string_view name, const CallArgs& a, bool* handled) {
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
    if (s) s->join();  // raises the children's errors (one, or an ErrorGroup)
}

void scope_abort(Value& nursery) {
    auto* n = nursery.as<NurseryObj>();
    rt::Scope* s = n->scope;
    n->scope = nullptr;
    std::unique_ptr<rt::Scope> own(s);
    if (!s) return;
    s->cancel();
    try {
        s->join();
    } catch (...) {
        // The error that ends the block wins; the children's are consequences.
    }
}

// ---------------------------------------------------------------------------
// Channels

namespace {

struct ChannelObj : OpaqueObj {
    rt::Channel<Value> ch;
    ChannelObj();
};

Value ch_send(CallContext&, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1) type_err("send() takes exactly one value");
    try {
        self.as<ChannelObj>()->ch.send(a.pos[0]);
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
    try {
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
    {"send", ch_send, false},   {"recv", ch_recv, false},   {"try_recv", ch_try_recv, false},
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
    auto v = static_cast<ChannelObj*>(self)->ch.recv_ok();
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
    auto* c = new ChannelObj();
    Value v = Value::adopt(c);
    const Value* unb = kw(a, "unbounded");
    if (unb && truthy(*unb)) {
        c->ch = rt::Channel<Value>::make_unbounded();
        return v;
    }
    int64_t cap = 0;
    const Value* capv = a.pos.empty() ? kw(a, "capacity") : &a.pos[0];
    if (capv && !capv->is_none()) {
        if (!capv->is_int() || capv->as_int() < 0) throw WeftError(ErrorKind::ValueError, "channel capacity must be an int >= 0");
        cap = capv->as_int();
    }
    c->ch = rt::Channel<Value>::make(size_t(cap));
    return v;
}

// select over (kind, channel, value) cases: kind 0 recv, 1 recv with ok, 2 send, 3 after(d).
Value bi_select_stmt(CallContext&, const CallArgs& a) {
    const auto& cases = a.pos[0].as<ListObj>()->items;
    bool has_default = truthy(a.pos[1]);
    size_t n = cases.size();
    std::vector<std::optional<Value>> sinks(n);
    std::vector<Value> sends(n);
    std::vector<rt::Channel<std::int64_t>> timers(n);
    std::vector<std::optional<std::int64_t>> timer_sinks(n);
    rt::Select sel;
    std::vector<int> kinds(n);
    for (size_t i = 0; i < n; ++i) {
        auto& t = cases[i].as<TupleObj>()->items;
        int kind = int(t[0].as_int());
        kinds[i] = kind;
        if (kind == 3) {
            timers[i] = rt::after(seconds_arg(t[2], "after()"));
            sel.recv(timers[i], timer_sinks[i]);
            continue;
        }
        if (!t[1].is(ObjType::Opaque) || t[1].as<OpaqueObj>()->cls != &kChannelClass)
            type_err("select case needs a channel, not " + type_name(t[1]));
        auto& ch = t[1].as<ChannelObj>()->ch;
        if (kind == 2) {
            sends[i] = t[2];
            sel.send(ch, sends[i]);
        } else {
            sel.recv(ch, sinks[i]);
        }
    }
    if (has_default) sel.default_case();
    int idx;
    try {
        idx = sel.wait();
    } catch (rt::ChannelClosed&) {
        throw WeftError(ErrorKind::ChannelClosed, "send on a closed channel in select");
    }
    if (idx < 0) return make_tuple({Value::integer(-1), Value(), Value::boolean(false)});
    int kind = kinds[size_t(idx)];
    if (kind == 0 || kind == 1) {
        bool ok = sel.received(idx);
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
    if (t && !t->is_none()) sel.timeout(seconds_arg(*t, "timeout"));
    for (;;) {
        int idx = sel.wait();
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

void atom_validate(CallContext& cx, AtomObj* at, const Value& v) {
    if (at->validator.is_none()) return;
    bool ok;
    try {
        ok = truthy(cx.call(at->validator, std::span<const Value>(&v, 1)));
    } catch (WeftError& e) {
        throw WeftError(ErrorKind::ValueError, "atom validator rejected " + repr(v));
    }
    if (!ok) throw WeftError(ErrorKind::ValueError, "atom validator rejected " + repr(v));
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
        atom_validate(cx, at, now);
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
    atom_validate(cx, at, a.pos[0]);
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
    atom_validate(cx, at, a.pos[1]);
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

const OpaqueClass kAtomClass{"atom", kAtomMethods, nullptr, atom_repr};
AtomObj::AtomObj() : OpaqueObj(&kAtomClass) {}

Value bi_atom(CallContext& cx, const CallArgs& a) {
    auto* at = new AtomObj();
    Value v = Value::adopt(at);
    if (!a.pos.empty()) at->value = a.pos[0];
    if (const Value* val = kw(a, "validator")) at->validator = *val;
    atom_validate(cx, at, at->value);
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
    bool expired = false, cancelled = false, cancel_requested = false;
    explicit CancelScopeObj(ScopeKind k);
    ~CancelScopeObj() override {
        for (auto* s : open) delete s;
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
    if (c->cancel_requested) c->open.back()->cancel();
    return self;
}

// __exit__(err): a Cancelled error caused by this scope ends the block (quietly,
// or as TimeoutError for `timeout`); anything else propagates.
Value cs_exit(CallContext&, Value& self, const CallArgs& a) {
    auto* c = self.as<CancelScopeObj>();
    if (c->open.empty()) return Value::boolean(false);
    std::unique_ptr<rt::CancelScope> s(c->open.back());
    c->open.pop_back();
    bool mine = s->cancel_called();
    c->expired = s->deadline_expired();
    c->cancelled = mine;
    const Value& err = a.pos.empty() ? Value() : a.pos[0];
    s.reset();  // leave the scope before deciding (its cancellation no longer applies)
    if (!is_cancelled_error(err) || !mine) return Value::boolean(false);
    if (c->kind == ScopeKind::Timeout && c->expired)
        throw WeftError(ErrorKind::TimeoutError, "deadline of " + (c->seconds >= 0 ? float_repr(c->seconds) + " s" : std::string("the scope")) + " exceeded");
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

const OpaqueClass kCancelScopeClass{"cancel_scope", kCancelScopeMethods, cs_attr};
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

}  // namespace

// Exposed to the interpreter (vm/interp.cpp).
Value make_lazy(const Value& thunk) {
    auto* p = new PromiseObj(PromiseObj::Kind::Lazy);
    p->thunk = thunk;
    return Value::adopt(p);
}

void register_concurrency_builtins(Vm& vm) {
    auto native = [&](const char* n, NativeFn f) { vm.add_builtin(n, Value::adopt(new NativeObj(n, f))); };
    native("channel", bi_channel);
    native("__select__", bi_select_stmt);
    native("select", bi_select_fn);
    native("after", bi_after);
    native("atom", bi_atom);
    native("timeout", bi_timeout);
    native("move_on_after", bi_move_on_after);
    native("cancel_scope", bi_cancel_scope);
    native("deadline", bi_deadline);
    native("sleep", bi_sleep);
    vm.add_builtin("shield", Value::adopt(new CancelScopeObj(ScopeKind::Shield)));
}

}  // namespace weft
