// actors.cpp — actors and agents (spec section 10): the ActorCore behind every ActorRef, the
// envelope a message travels in, the task that handles messages, stop/monitor/link/whereis,
// and the shutdown at the end of the program. See vm/actors.h and docs/actors.md.
//
// Life of a message. The sender builds an Envelope (the handler, the arguments — shared, so
// the actor sees a value no one else can change — and, for an ask, a one-slot reply channel)
// and posts it to the actor's rt::Mailbox in its own task, so a task's tells and asks arrive in
// the order it made them. An ask returns a lazy promise whose thunk waits on the reply
// channel: only the wait is deferred. The mailbox starts the actor's task if the actor was
// idle; that task runs the handler on the actor's state with the actor's capabilities, forces
// the result, answers the ask, and takes the next message.
//
// Stopping. Whoever stops an actor (its own handler through self.stop(), a failure, ref.stop(),
// a link, a supervisor, the end of the program) closes its mailbox: queued messages are then
// dropped by the actor's task (asks fail with ActorStopped, tells are dead letters), and when
// the mailbox is empty that task runs on_stop and tells the watchers (finalize()). ref.stop()
// from outside waits for that on the actor's `done` channel.
#include "vm/actors.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/suggest.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/limits.h"
#include "vm/pending.h"
#include "vm/tasks.h"
#include "weft/runtime/mailbox.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

std::shared_ptr<const CapabilitySet> (*caps_value_set_hook)(const Value&) = nullptr;
// Remote actors, set by the cluster layer (cluster/actors.cpp) when linked (docs/cluster.md):
// registers a `spawn(name=..., cluster=True)` actor under its name in the cluster; finds a name
// no local actor holds (whereis; None when unknown); monitor() of a remote ref (true with the
// channel in `out`, false for other values).
void (*actor_cluster_spawn_hook)(CallContext& cx, const std::string& name, const Value& ref) = nullptr;
Value (*actor_cluster_whereis_hook)(CallContext& cx, const std::string& name) = nullptr;
bool (*actor_cluster_monitor_hook)(CallContext& cx, const Value& ref, Value& out) = nullptr;

namespace {

struct ActorCore;
struct SupSlot;

// What one message carries.
struct Envelope {
    Value fn;                 // the handler (a Weft function taking self first)
    const StrObj* name = nullptr;  // its name, interned (immortal): reports, on_error, current
    const std::string& method() const { return name->data; }
    std::vector<Value> args;  // args[0] is a placeholder for self
    std::vector<std::string> kw_names;
    std::vector<Value> kw_values;
    rt::Channel<std::pair<Value, Value>> reply;  // asks: (value, error), one slot; nil for tells
    bool internal = false;    // on_start: not counted as a message
};
using EnvPtr = std::unique_ptr<Envelope>;

enum Phase : int { kInit = 0, kActive = 1, kStopping = 2, kDone = 3 };

struct ActorRefObj;

struct ActorCore : std::enable_shared_from_this<ActorCore> {
    Vm* vm = nullptr;
    ActorSystem* sys = nullptr;
    Value type;   // the StructTypeObj
    Value state;  // the StructObj; its hidden last field is `ref`
    Value ref;    // the canonical ActorRef (cleared when stopped: it points back here)
    uint64_t id = 0;
    std::string name;  // registered name, or ""
    bool agent = false;
    std::shared_ptr<const CapabilitySet> caps;
    std::shared_ptr<rt::Mailbox<EnvPtr>> box;
    std::atomic<int> phase{kInit};
    std::atomic<rt::Task*> task{nullptr};  // the task handling messages now, if any
    std::atomic<bool> killing{false};
    std::atomic<bool> finalized{false};
    std::atomic<uint64_t> dead_letters{0};
    // Closed once stopped; made by the first task that waits for the stop (an idle actor that
    // nobody stops holds none: ~250 bytes less per actor).
    rt::Channel<int> done;  // under mu
    std::mutex mu;  // what follows
    bool stop_requested = false;
    std::atomic<bool> stop_flag{false};  // stop_requested, read without the lock after each message
    std::atomic<const StrObj*> current{nullptr};  // the handler running now (an interned name)
    bool failed = false;
    bool watched = false;  // a monitor, a link or a supervisor will hear of a failure
    bool start_observed = false;  // on_start failed: spawn raised it
    bool finalized_done = false;  // finalize() has finished (set with `done` closed)
    Value reason;          // why it stopped (None: normally)
    std::vector<Value> monitors;  // Weft channels
    std::vector<std::weak_ptr<ActorCore>> links;
    std::vector<std::pair<std::weak_ptr<ActorCore>, Value>> supervisors;  // (supervisor, child id)
    rt::TaskRef task_ref;  // the running task, for a kill

    std::string label() const {
        std::string s = type.as<StructTypeObj>()->name + "#" + std::to_string(id);
        if (!name.empty()) s += " '" + name + "'";
        return s;
    }
    bool accepting() const { return phase.load(std::memory_order_acquire) < kStopping && !box->closed(); }
};

// A stable reference to whatever instance a supervisor runs for one child (sup.ref(id)).
struct SupSlot {
    std::mutex mu;
    std::shared_ptr<ActorCore> cur;
    bool final = false;  // no instance will come any more
    rt::Channel<int> changed = rt::Channel<int>::make(1);  // closed (and replaced) on each change
};

struct ActorRefObj : OpaqueObj {
    std::shared_ptr<ActorCore> core;  // a direct reference
    std::shared_ptr<SupSlot> slot;    // or a supervisor's stable one
    explicit ActorRefObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

extern const OpaqueClass kActorRefClass;

}  // namespace

class ActorSystem {
public:
    std::mutex mu;
    rt::detail::CancelNode* nursery = nullptr;  // the current root's implicit nursery
    std::vector<std::weak_ptr<ActorCore>> order;  // spawn order
    std::unordered_map<std::string, std::weak_ptr<ActorCore>> names;
    std::vector<Value> failures;  // failures nobody watched, raised at the end
    std::atomic<uint64_t> next_id{1};
    std::atomic<uint64_t> spawned{0}, messages{0}, dead_letters{0}, dropped{0}, restarts{0};
    std::atomic<size_t> peak{0};
    std::atomic<bool> shutting_down{false};  // the program's end: supervisors restart nothing
};

void destroy_actor_system(ActorSystem* s) { delete s; }

namespace {

ActorSystem& system_of(Vm& vm) {
    // Created by the first root task (actors_begin_root), before any actor exists.
    if (!vm.actor_system) vm.actor_system = new ActorSystem();
    return *vm.actor_system;
}

[[noreturn]] void fail(ErrorKind k, std::string msg) { throw WeftError(k, std::move(msg)); }

Value native_method(const char* name, MethodFn fn, Value self, const char* kwargs = nullptr) {
    auto* n = new NativeObj(name, nullptr);
    n->method = fn;
    n->kwargs = kwargs;
    n->self = std::move(self);
    return Value::adopt(n);
}

ActorRefObj* as_ref(const Value& v) {
    if (!v.is(ObjType::Opaque) || v.as<OpaqueObj>()->cls != &kActorRefClass) return nullptr;
    return static_cast<ActorRefObj*>(v.as<OpaqueObj>());
}

ActorRefObj* ref_arg(const Value& v, const char* fn) {
    ActorRefObj* r = as_ref(v);
    if (!r) fail(ErrorKind::TypeError, std::string(fn) + "() expects an ActorRef, not " + type_name(v));
    return r;
}

Interp& interp_of(CallContext& cx) { return static_cast<Interp&>(cx); }

bool in_own_task(const ActorCore& c) { return c.task.load(std::memory_order_acquire) == rt::current_task(); }

// The instance a reference names now. For a stable reference whose child is restarting,
// waits for the next instance (`wait`), or returns null when none will come.
std::shared_ptr<ActorCore> target(ActorRefObj* r, bool wait) {
    if (r->core) return r->core;
    for (;;) {
        rt::Channel<int> changed;
        {
            std::lock_guard<std::mutex> g(r->slot->mu);
            if (r->slot->cur && (r->slot->cur->accepting() || !wait)) return r->slot->cur;
            if (r->slot->final) return r->slot->cur;
            changed = r->slot->changed;
        }
        changed.recv_ok();  // parks until the supervisor installs an instance (or gives up)
    }
}

// The runtime's own supervisor actor (vm/actors_lib.cpp): `sup.ref(id)` is its `child_ref`.
bool is_supervisor(const ActorCore& c) {
    auto* t = c.type.as<StructTypeObj>();
    return t->name == "Supervisor" && t->method_interned(intern("child_ref")) != nullptr &&
           t->method_interned(intern("_child_down")) != nullptr;
}

// The handler `method` of the actor's type (its entry in the type's method cache, which lives as
// long as the type), or an AttributeError at the sender.
const std::pair<const StrObj*, Value>& handler_entry(const ActorCore& c, std::string_view method) {
    auto* t = c.type.as<StructTypeObj>();
    if (method != "on_start" && method != "on_stop" && method != "on_error")
        for (auto& m : t->method_cache)
            if (m.first->data.size() == method.size() && m.first->data == method) return m;
    std::vector<std::string> names;
    for (auto& m : t->method_cache)
        if (m.first->data.rfind("on_", 0) != 0) names.push_back(m.first->data);
    fail(ErrorKind::AttributeError, "actor '" + t->name + "' has no handler '" + std::string(method) + "'" +
                                        did_you_mean(method, names));
}

const Value* lifecycle(const ActorCore& c, std::string_view name) {
    for (auto& m : c.type.as<StructTypeObj>()->method_cache)
        if (m.first->data == name) return &m.second;
    return nullptr;
}

void note_peak(ActorSystem& sys, size_t n) {
    size_t p = sys.peak.load(std::memory_order_relaxed);
    while (n > p && !sys.peak.compare_exchange_weak(p, n, std::memory_order_relaxed)) {
    }
}

// A tell that will not be handled: to a stopped actor, or dropped by a full mailbox.
void count_dead_letter(ActorCore& c, bool dropped_by_full_mailbox) {
    c.dead_letters.fetch_add(1, std::memory_order_relaxed);
    c.sys->dead_letters.fetch_add(1, std::memory_order_relaxed);
    if (dropped_by_full_mailbox) c.sys->dropped.fetch_add(1, std::memory_order_relaxed);
}

// The notice a monitor's channel gets, then the channel is closed.
void send_down_notice(const Value& channel, const Value& ref, const Value& reason) {
    Value d = make_dict();
    dict_unshare(d)->table.insert(make_str("down"), ref);
    dict_unshare(d)->table.insert(make_str("reason"), reason);
    share(d);
    if (auto* ch = channel_core(channel)) {
        ch->try_send(d);
        ch->close();
    }
}

void answer(Envelope& e, Value value, Value error) {
    if (e.reply.is_nil()) return;
    share(value);
    share(error);
    e.reply.try_send(std::make_pair(std::move(value), std::move(error)));  // one slot: never full
}

// Asks the actor to stop after the message it is handling; `why` is the reason (None: normal).
void request_stop(ActorCore& c, Value why) {
    {
        std::lock_guard<std::mutex> g(c.mu);
        if (!c.stop_requested) {
            c.stop_requested = true;
            c.stop_flag.store(true, std::memory_order_release);
            c.failed = !why.is_none();
            share(why);
            c.reason = std::move(why);
        }
    }
    c.box->close();
}

void finalize(ActorCore& c, Interp& in);

// Parks until the actor has stopped (finalize() has run). Cancellable like any wait.
void wait_stopped(ActorCore& c) {
    rt::Channel<int> done;
    {
        std::lock_guard<std::mutex> g(c.mu);
        if (c.finalized_done) return;
        if (c.done.is_nil()) c.done = rt::Channel<int>::make(1);
        done = c.done;
    }
    done.recv_ok();
}

// Runs one message on the actor's task.
void handle(ActorCore& c, Envelope& e) {
    Interp& in = *current_interp();
    c.current.store(e.internal ? nullptr : e.name, std::memory_order_release);
    Value result, err;
    bool cancelled = false;
    e.args[0] = c.state;
    std::vector<KwArg> kws;
    for (size_t i = 0; i < e.kw_names.size(); ++i) kws.push_back(KwArg{e.kw_names[i], e.kw_values[i]});
    try {
        // Tasks the handler spawns belong to the message; its reply is forced before the next.
        result = run_in_implicit_scope([&] {
            Value v = in.call_kw(e.fn, e.args, kws);
            in.force(v);
            return v;
        });
    } catch (WeftError& we) {
        err = in.error_value(we);
    } catch (const rt::Cancelled&) {
        cancelled = true;
        err = c.vm->make_error(ErrorKind::Cancelled, "the actor was killed");
    } catch (...) {
        err = in.runtime_error_value(std::current_exception());
    }
    e.args.clear();
    e.kw_values.clear();
    if (!e.internal) c.sys->messages.fetch_add(1, std::memory_order_relaxed);
    answer(e, result, err);
    if (!err.is_none() && !cancelled && !e.internal) {
        if (const Value* on_error = lifecycle(c, "on_error")) {
            // on_error(self, err, msg): returning normally keeps the actor running.
            Value msg = make_dict();
            dict_unshare(msg)->table.insert(make_str("method"), make_str(e.method()));
            try {
                Value args[3] = {c.state, err, msg};
                in.call(*on_error, args);
                err = Value();
            } catch (WeftError& we) {
                err = in.error_value(we);
            }
        }
    }
    c.current.store(nullptr, std::memory_order_release);
    if (!err.is_none()) {
        if (e.internal) {
            std::lock_guard<std::mutex> g(c.mu);
            c.start_observed = true;  // spawn raises it
        }
        request_stop(c, err);
    }
    // self.stop() in the handler: it stops now that the handler has returned.
    if (c.stop_flag.load(std::memory_order_acquire)) c.box->close();
    if (e.internal && err.is_none()) c.phase.store(kActive, std::memory_order_release);
    if (cancelled && !c.killing.load()) throw rt::Cancelled();  // the program is being cancelled
}

// A message removed unhandled: the actor stopped (ActorStopped) or drop_oldest made room
// (MailboxFull). A tell is a dead letter.
void dropped(ActorCore& c, Envelope& e) {
    bool stopped = c.box->closed();
    if (e.reply.is_nil()) return count_dead_letter(c, !stopped);
    Value err = stopped ? c.vm->make_error(ErrorKind::ActorStopped, "actor " + c.label() + " stopped before handling '" +
                                                                        e.method() + "'")
                        : c.vm->make_error(ErrorKind::MailboxFull, "the mailbox of actor " + c.label() +
                                                                       " was full: '" + e.method() + "' was dropped");
    answer(e, Value(), err);
}

// The body of an actor's task: a native bound to the core (held by a small opaque object).
struct ActorTaskObj : OpaqueObj {
    std::shared_ptr<ActorCore> core;
    std::function<void()> drain;
    explicit ActorTaskObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
const OpaqueClass kActorTaskClass{"actor task"};

Value actor_task_run(CallContext& cx, Value& self, const CallArgs&) {
    auto* t = static_cast<ActorTaskObj*>(self.as<OpaqueObj>());
    ActorCore& c = *t->core;
    c.task.store(rt::current_task(), std::memory_order_release);
    struct Clear {
        ActorCore& c;
        ~Clear() { c.task.store(nullptr, std::memory_order_release); }
    } clear{c};
    t->drain();
    if (c.box->closed() && c.box->len() == 0) finalize(c, interp_of(cx));
    {
        // The task holds the core (through this body): a handle kept past its end would be a
        // cycle core -> task -> core.
        std::lock_guard<std::mutex> g(c.mu);
        if (c.task_ref && c.task_ref.get() == rt::current_task()) c.task_ref = rt::TaskRef();
    }
    return Value();
}

// Starts the actor's task in the program's root nursery, with the actor's capabilities.
void start_task(const std::weak_ptr<ActorCore>& weak, std::function<void()> drain) {
    auto c = weak.lock();
    if (!c) return;
    auto* o = new ActorTaskObj(&kActorTaskClass);
    Value ov = Value::adopt(o);
    o->core = c;
    o->drain = std::move(drain);
    // The task is named after the actor's type ("Counter#7" in --trace, tasks(), Deadlock).
    Value fn = native_method("actor", actor_task_run, ov);
    static_cast<NativeObj*>(fn.as_obj())->name = c->type.as<StructTypeObj>()->name;
    rt::TaskRef t;
    {
        SpawnNote note{c->type.as<StructTypeObj>()->name, "actor"};
        SpawnNoteGuard g(&note);
        t = start_call_task(*c->vm, fn, {}, {}, {}, c->caps, CodeSite{}, c->sys->nursery);
    }
    // Kept for a kill. The task may already have ended, and even stopped the actor: a handle
    // stored after finalize() would hold the core through the task's body for ever.
    std::lock_guard<std::mutex> g(c->mu);
    if (!c->finalized_done) c->task_ref = std::move(t);
}

// on_stop, then the watchers: monitors get {"down": ref, "reason": r}, linked actors stop with
// the same error (a normal stop does not propagate), supervisors get `_child_down`.
void finalize(ActorCore& c, Interp& in) {
    if (c.finalized.exchange(true)) return;
    c.phase.store(kStopping, std::memory_order_release);
    Value reason;
    {
        std::lock_guard<std::mutex> g(c.mu);
        reason = c.reason;
    }
    if (const Value* on_stop = lifecycle(c, "on_stop")) {
        try {
            Value args[2] = {c.state, reason};
            in.call(*on_stop, args);
        } catch (WeftError& we) {
            // An on_stop that fails turns a normal stop into a failure.
            if (reason.is_none()) {
                reason = in.error_value(we);
                share(reason);
                std::lock_guard<std::mutex> g(c.mu);
                c.reason = reason;
                c.failed = true;
            }
        } catch (const rt::Cancelled&) {
        }
    }
    c.phase.store(kDone, std::memory_order_release);
    ActorSystem& sys = *c.sys;
    if (!c.name.empty()) {
        std::lock_guard<std::mutex> g(sys.mu);
        auto it = sys.names.find(c.name);
        if (it != sys.names.end() && it->second.lock().get() == &c) sys.names.erase(it);
    }
    std::vector<Value> monitors;
    std::vector<std::weak_ptr<ActorCore>> links;
    std::vector<std::pair<std::weak_ptr<ActorCore>, Value>> sups;
    bool failed, watched, start_observed;
    {
        std::lock_guard<std::mutex> g(c.mu);
        monitors.swap(c.monitors);
        links.swap(c.links);
        sups.swap(c.supervisors);
        failed = c.failed;
        watched = c.watched;
        start_observed = c.start_observed;
    }
    Value ref = c.ref;
    for (auto& m : monitors) send_down_notice(m, ref, reason);
    if (failed)
        for (auto& w : links)
            if (auto other = w.lock()) request_stop(*other, reason);
    for (auto& [w, id] : sups) {
        auto sup = w.lock();
        if (!sup) continue;
        auto env = std::make_unique<Envelope>();
        try {
            const auto& h = handler_entry(*sup, "_child_down");
            env->fn = h.second;
            env->name = h.first;
        } catch (WeftError&) {
            continue;
        }
        env->args = {Value(), id, reason, ref};
        share_all(env->args);
        sup->box->post(env);
    }
    if (failed && !watched && !start_observed) {
        std::lock_guard<std::mutex> g(sys.mu);
        sys.failures.push_back(reason);
    }
    rt::Channel<int> done;
    {
        std::lock_guard<std::mutex> g(c.mu);
        c.finalized_done = true;
        done = c.done;
    }
    if (!done.is_nil()) done.close();
    // Break the cycles state -> ref -> core -> state and core -> task -> core: the actor is gone.
    c.state = Value();
    c.ref = Value();
    std::lock_guard<std::mutex> g(c.mu);
    c.task_ref = rt::TaskRef();
}

// Posts `e` (an ask when it has a reply channel). Raises ActorStopped / MailboxFull for asks
// (and for tells under overflow="error"); a tell to a stopped actor is a dead letter.
void post(ActorCore& c, EnvPtr& e) {
    bool ask = !e->reply.is_nil();
    auto dead = [&] {
        if (ask) fail(ErrorKind::ActorStopped, "actor " + c.label() + " is stopped");
        count_dead_letter(c, false);
    };
    if (c.phase.load(std::memory_order_acquire) >= kStopping) return dead();
    rt::PostResult r = rt::PostResult::Closed;
    double bound = c.box->options().overflow == rt::Overflow::Block ? limits::wait_bound() : -1;
    if (bound >= 0) {
        // A full mailbox makes the sender wait: --default-timeout bounds that wait too.
        rt::CancelScopeOptions o;
        o.timeout = bound;
        if (!rt::CancelScope::run(o, [&](rt::CancelScope&) { r = c.box->post(e); }))
            limits::raise_default_timeout("send to the full mailbox of actor " + c.label());
    } else {
        r = c.box->post(e);
    }
    switch (r) {
        case rt::PostResult::Posted:
            note_peak(*c.sys, c.box->peak());
            return;
        case rt::PostResult::Closed:
            return dead();
        case rt::PostResult::Rejected:
            if (ask || c.box->options().overflow == rt::Overflow::Error)
                fail(ErrorKind::MailboxFull, "the mailbox of actor " + c.label() + " is full (" +
                                                 std::to_string(c.box->options().capacity) + " messages)");
            count_dead_letter(c, true);
            return;
    }
}

// The envelope of `method(*args, **kw)` for actor `c`.
EnvPtr envelope(ActorCore& c, std::string_view method, std::span<const Value> args, std::span<const KwArg> kw,
                bool ask) {
    auto e = std::make_unique<Envelope>();
    const auto& h = handler_entry(c, method);
    e->fn = h.second;
    e->name = h.first;
    e->args.reserve(args.size() + 1);
    e->args.push_back(Value());
    for (auto& a : args) {
        e->args.push_back(a);
        share(a);
    }
    for (auto& k : kw) {
        e->kw_names.emplace_back(k.name);
        e->kw_values.push_back(k.value);
        share(k.value);
    }
    if (ask) e->reply = rt::Channel<std::pair<Value, Value>>::make(1);
    return e;
}

// The reply of an ask, waited for when the promise is forced.
struct ReplyObj : OpaqueObj {
    rt::Channel<std::pair<Value, Value>> ch;
    int64_t deadline = INT64_MAX;
    double timeout = 0;
    std::string what;  // "Counter#3.increment"
    explicit ReplyObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
const OpaqueClass kReplyClass{"reply"};

Value reply_wait(CallContext& cx, Value& self, const CallArgs&) {
    auto* r = static_cast<ReplyObj*>(self.as<OpaqueObj>());
    cx.note_may_wait();
    std::optional<std::pair<Value, Value>> out;
    int64_t deadline = r->deadline;
    bool by_default = false;
    if (deadline == INT64_MAX) {
        // No timeout of its own: --default-timeout / set_default_timeout bounds it.
        if (double bound = limits::wait_bound(); bound >= 0) {
            deadline = rt::now_ns() + int64_t(bound * 1e9);
            by_default = true;
        }
    }
    try {
        if (!r->ch.core_ptr()->recv(&out, deadline)) fail(ErrorKind::ActorStopped, r->what + ": no reply");
    } catch (const rt::TimeoutError&) {
        if (by_default) limits::raise_default_timeout("ask " + r->what);
        char buf[64];
        snprintf(buf, sizeof buf, "%g", r->timeout);
        fail(ErrorKind::TimeoutError, "ask " + r->what + " got no reply within " + buf + " s");
    }
    if (!out->second.is_none()) throw WeftError(out->second);
    return out->first;
}

// An ask: the message is queued now; the returned promise waits for the reply.
Value do_ask(CallContext& cx, ActorRefObj* r, std::string_view method, std::span<const Value> args,
             std::span<const KwArg> kw, double timeout) {
    auto c = target(r, true);
    if (!c) fail(ErrorKind::ActorStopped, "the actor is stopped and will not be restarted");
    if (in_own_task(*c))
        fail(ErrorKind::Deadlock, "actor " + c->label() + " asks itself '" + std::string(method) +
                                      "': it would wait for its own reply (call self." + std::string(method) +
                                      "(...) as a method, or use tell)");
    auto e = envelope(*c, method, args, kw, true);
    auto* ro = new ReplyObj(&kReplyClass);
    Value rv = Value::adopt(ro);
    ro->ch = e->reply;
    ro->what = c->label() + "." + std::string(method);
    if (timeout > 0) {
        ro->timeout = timeout;
        ro->deadline = rt::now_ns() + int64_t(timeout * 1e9);
    }
    post(*c, e);
    // The wait is a deferred call like any other: forced where its value is used, and awaited
    // (its error raised) when the calling activation ends if nothing used it.
    Value waiter = native_method("ask", reply_wait, rv);
    static_cast<NativeObj*>(waiter.as_obj())->blocking = true;
    if (!rt::current_task()) return reply_wait(cx, rv, CallArgs{});
    return defer_call(interp_of(cx), std::move(waiter), std::span<Value>());
}

double timeout_kw(const Value* v, const char* fn) {
    if (!v || v->is_none()) return 0;
    double s;
    if (v->is_int())
        s = double(v->as_int());
    else if (v->is_float())
        s = v->as_float();
    else
        fail(ErrorKind::TypeError, std::string(fn) + "() timeout must be a number of seconds, not " + type_name(*v));
    if (!(s > 0)) fail(ErrorKind::ValueError, std::string(fn) + "() timeout must be > 0");
    return s;
}

std::string method_arg(const CallArgs& a, const char* fn) {
    if (a.pos.empty() || !a.pos[0].is(ObjType::Str))
        fail(ErrorKind::TypeError, std::string(fn) + "() takes the handler's name (a str) first");
    return a.pos[0].as<StrObj>()->data;
}

// ref.tell(method, *args, **kw)
Value ref_tell(CallContext&, Value& self, const CallArgs& a) {
    auto* r = static_cast<ActorRefObj*>(self.as<OpaqueObj>());
    std::string m = method_arg(a, "tell");
    auto c = target(r, true);
    if (!c) return Value();  // a dead letter: no instance will come
    auto e = envelope(*c, m, a.pos.subspan(1), a.kw, false);
    post(*c, e);
    return Value();
}

// ref.ask(method, *args, timeout=None, **kw)
Value ref_ask(CallContext& cx, Value& self, const CallArgs& a) {
    auto* r = static_cast<ActorRefObj*>(self.as<OpaqueObj>());
    std::string m = method_arg(a, "ask");
    double timeout = timeout_kw(a.find_kw("timeout"), "ask");
    std::vector<KwArg> kw;
    for (auto& k : a.kw)
        if (k.name != "timeout") kw.push_back(k);
    return do_ask(cx, r, m, a.pos.subspan(1), kw, timeout);
}

// Stops `c` and waits (unless called from its own task) until it has stopped.
void stop_and_wait(ActorCore& c, Value why) {
    if (c.phase.load(std::memory_order_acquire) == kDone) return;
    if (in_own_task(c)) {
        std::lock_guard<std::mutex> g(c.mu);
        c.stop_requested = true;  // self.stop(): after the handler returns
        c.stop_flag.store(true, std::memory_order_release);
        if (!why.is_none() && c.reason.is_none()) {
            share(why);
            c.reason = why;
            c.failed = true;
        }
        return;
    }
    request_stop(c, std::move(why));
    wait_stopped(c);  // parks until finalize() has run
}

// ref.stop(reason=None)
Value ref_stop(CallContext&, Value& self, const CallArgs& a) {
    auto* r = static_cast<ActorRefObj*>(self.as<OpaqueObj>());
    auto c = target(r, false);
    if (!c) return Value();
    Value why = a.pos.empty() ? Value() : a.pos[0];
    if (const Value* k = a.find_kw("reason")) why = *k;
    stop_and_wait(*c, why);
    return Value();
}

std::shared_ptr<ActorCore> agent_target(Value& self, const char* fn) {
    auto* r = static_cast<ActorRefObj*>(self.as<OpaqueObj>());
    auto c = target(r, false);
    if (!c || !c->agent)
        fail(ErrorKind::AttributeError, std::string("'ActorRef' object has no attribute '") + fn +
                                            "' (only agents can be suspended)");
    return c;
}

// agent.suspend(): returns once the message being handled is finished.
Value ref_suspend(CallContext&, Value& self, const CallArgs&) {
    auto c = agent_target(self, "suspend");
    c->box->suspend();
    if (in_own_task(*c)) return Value();
    // The handler in progress, if any, finishes first (bounded by that handler).
    while (c->box->busy() && c->phase.load() < kDone) rt::sleep_for(0.0005);
    return Value();
}

Value ref_resume(CallContext&, Value& self, const CallArgs&) {
    auto c = agent_target(self, "resume");
    c->box->resume();
    return Value();
}

// A handler-method call `ref.m(...)`: an ask (keyword `timeout` is the handler's own).
struct HandlerObj : OpaqueObj {
    Value ref;
    std::string method;
    explicit HandlerObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

Value handler_call(CallContext& cx, Value& self, const CallArgs& a) {
    auto* h = static_cast<HandlerObj*>(self.as<OpaqueObj>());
    return do_ask(cx, as_ref(h->ref), h->method, a.pos, a.kw, 0);
}
const OpaqueClass kHandlerClass{"handler"};

Value sup_ref_call(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.kw.empty()) fail(ErrorKind::TypeError, "ref() takes one child id");
    Value p = do_ask(cx, static_cast<ActorRefObj*>(self.as<OpaqueObj>()), "child_ref", a.pos, {}, 0);
    interp_of(cx).force(p);
    return p;
}

bool ref_attr(const OpaqueObj* self, std::string_view n, Value& out) {
    auto* r = static_cast<ActorRefObj*>(const_cast<OpaqueObj*>(self));
    if (n == "alive") {
        auto c = target(r, false);
        bool alive = c && c->phase.load(std::memory_order_acquire) < kStopping && !c->box->closed();
        // A stable reference is alive while its current instance is (False during a restart).
        out = Value::boolean(alive);
        return true;
    }
    if (n == "tell" || n == "ask" || n == "stop") return false;  // the methods table
    auto c = target(r, false);
    if (!c) return false;
    if (c->agent && n == "state") {
        int p = c->phase.load(std::memory_order_acquire);
        const char* s = p == kInit ? "init" : p >= kStopping || c->box->closed() ? "done"
                                           : c->box->suspended()                ? "suspended"
                                                                                 : "active";
        out = make_str(s);
        return true;
    }
    if (c->agent && (n == "suspend" || n == "resume")) {
        out = native_method(n == "suspend" ? "suspend" : "resume", n == "suspend" ? ref_suspend : ref_resume,
                            Value::borrow(const_cast<OpaqueObj*>(self)));
        return true;
    }
    if (n == "ref" && is_supervisor(*c)) {
        // sup.ref(id): answered at once (KeyError for an unknown id), not as a promise.
        out = native_method("ref", sup_ref_call, Value::borrow(const_cast<OpaqueObj*>(self)));
        return true;
    }
    // A handler: `ref.m(...)` is an ask. Unknown names raise AttributeError here, at the sender.
    handler_entry(*c, n);
    auto* h = new HandlerObj(&kHandlerClass);
    Value hv = Value::adopt(h);
    h->ref = Value::borrow(const_cast<OpaqueObj*>(self));
    h->method = std::string(n);
    out = native_method(h->method.c_str(), handler_call, hv, kAnyKeywords);
    return true;
}

std::string ref_repr(const OpaqueObj* self) {
    auto* r = static_cast<ActorRefObj*>(const_cast<OpaqueObj*>(self));
    auto c = target(r, false);
    if (!c) return "<ActorRef (stopped)>";
    return "<ActorRef " + c->label() + (c->phase.load() >= kStopping ? " stopped>" : ">");
}

int64_t ref_len(const OpaqueObj* self) {
    auto c = target(static_cast<ActorRefObj*>(const_cast<OpaqueObj*>(self)), false);
    return c ? int64_t(c->box->len()) : 0;
}

const MethodInfo kRefMethods[] = {
    {"tell", ref_tell, false, kAnyKeywords},
    {"ask", ref_ask, false, kAnyKeywords},
    {"stop", ref_stop, false, "reason"},
    {nullptr, nullptr, false},
};

// `share` of a reference touches nothing: the core keeps its values shared itself.
const OpaqueClass kActorRefClass{"ActorRef", kRefMethods, ref_attr, ref_repr, ref_len};

}  // namespace


// ---------------------------------------------------------------------------
// Spawning

namespace {

Value make_ref(std::shared_ptr<ActorCore> core, std::shared_ptr<SupSlot> slot) {
    auto* r = new ActorRefObj(&kActorRefClass);
    Value v = Value::adopt(r);
    r->core = std::move(core);
    r->slot = std::move(slot);
    return v;
}

rt::Overflow overflow_arg(const Value* v) {
    if (!v || v->is_none()) return rt::Overflow::Block;
    if (v->is(ObjType::Str)) {
        const std::string& s = v->as<StrObj>()->data;
        if (s == "block") return rt::Overflow::Block;
        if (s == "drop_oldest") return rt::Overflow::DropOldest;
        if (s == "drop_new") return rt::Overflow::DropNew;
        if (s == "error") return rt::Overflow::Error;
    }
    fail(ErrorKind::ValueError, "overflow must be \"block\", \"drop_oldest\", \"drop_new\" or \"error\", not " +
                                    repr(*v));
}

// X.spawn(**fields, name=None, mailbox=10_000, overflow="block", capabilities=None)
Value actor_spawn(CallContext& cx, Value& self, const CallArgs& a) {
    Interp& in = interp_of(cx);
    auto* t = self.as<StructTypeObj>();
    if (!a.pos.empty())
        fail(ErrorKind::TypeError, t->name + ".spawn() takes keyword arguments only (the fields, name=, mailbox=, "
                                             "overflow=, capabilities=)");
    if (!rt::current_task()) fail(ErrorKind::Error, "spawn outside a running program");
    Vm& vm = in.vm();
    ActorSystem& sys = system_of(vm);
    std::vector<KwArg> fields;
    std::string name;
    size_t capacity = 10000;
    const Value* overflow = nullptr;
    const Value* caps_v = nullptr;
    bool in_cluster = false;
    for (auto& k : a.kw) {
        if (k.name == "cluster") {
            in_cluster = truthy(k.value);
        } else if (k.name == "name") {
            if (!k.value.is_none()) {
                if (!k.value.is(ObjType::Str)) fail(ErrorKind::TypeError, "spawn() name must be a str");
                name = k.value.as<StrObj>()->data;
            }
        } else if (k.name == "mailbox") {
            if (!k.value.is_int() || k.value.as_int() < 1)
                fail(ErrorKind::ValueError, "spawn() mailbox must be an int >= 1 (the messages that may wait)");
            capacity = size_t(k.value.as_int());
        } else if (k.name == "overflow") {
            overflow = &k.value;
        } else if (k.name == "capabilities") {
            caps_v = &k.value;
        } else {
            fields.push_back(k);
        }
    }
    auto c = std::make_shared<ActorCore>();
    c->vm = &vm;
    c->sys = &sys;
    c->type = self;
    c->agent = t->actor_kind == 2;
    c->id = sys.next_id.fetch_add(1);
    c->name = name;
    // Authority: the spawner's, or a narrower caps(...) value.
    c->caps = in.capabilities();
    if (caps_v && !caps_v->is_none()) {
        std::shared_ptr<const CapabilitySet> want = caps_value_set_hook ? caps_value_set_hook(*caps_v) : nullptr;
        if (!want) fail(ErrorKind::TypeError, "spawn() capabilities must be a caps(...) value, not " + type_name(*caps_v));
        std::string excess;
        if (c->caps && !c->caps->covers(*want, excess))
            fail(ErrorKind::PermissionDenied, t->name + ".spawn() asks for " + excess +
                                                  ", which the spawning task does not hold");
        c->caps = want;
    }
    c->state = in.new_struct(t, {}, fields);
    rt::Mailbox<EnvPtr>::Options mo;
    mo.capacity = capacity;
    mo.overflow = overflow_arg(overflow);
    std::weak_ptr<ActorCore> weak = c;
    c->box = rt::Mailbox<EnvPtr>::make(
        mo,
        [weak](EnvPtr& e) {
            if (auto core = weak.lock()) handle(*core, *e);
        },
        [weak](EnvPtr& e) {
            if (auto core = weak.lock()) dropped(*core, *e);
        },
        [weak](std::function<void()> drain) { start_task(weak, std::move(drain)); });
    c->ref = make_ref(c, nullptr);
    // The state's hidden last slot is `self.ref`.
    c->state.as<StructObj>()->fields.push_back(c->ref);
    share(c->state);
    share(c->ref);
    {
        std::lock_guard<std::mutex> g(sys.mu);
        if (!name.empty()) {
            auto it = sys.names.find(name);
            std::shared_ptr<ActorCore> holder = it == sys.names.end() ? nullptr : it->second.lock();
            if (holder && holder->phase.load() < kDone) {
                c->state = Value();  // the cycle state -> ref -> core is not left behind
                c->ref = Value();
                fail(ErrorKind::ValueError, "an actor named '" + name + "' is already running");
            }
            sys.names[name] = c;
        }
        sys.order.push_back(c);
    }
    sys.spawned.fetch_add(1, std::memory_order_relaxed);
    // on_start is the first message; spawn returns once it has returned (and raises its error).
    if (const Value* on_start = lifecycle(*c, "on_start")) {
        auto e = std::make_unique<Envelope>();
        e->fn = *on_start;
        e->name = intern("on_start");
        e->args.push_back(Value());
        e->internal = true;
        e->reply = rt::Channel<std::pair<Value, Value>>::make(1);
        auto reply = e->reply;
        post(*c, e);
        auto r = reply.recv_ok();
        if (r && !r->second.is_none()) {
            wait_stopped(*c);  // it stops with that error: wait for on_stop and the watchers
            throw WeftError(r->second);
        }
    } else {
        c->phase.store(kActive, std::memory_order_release);
    }
    if (in_cluster) {  // reachable from other processes by its name (docs/cluster.md)
        if (name.empty()) fail(ErrorKind::ValueError, t->name + ".spawn(cluster=True) needs a name= (other processes find it by name)");
        if (!actor_cluster_spawn_hook)
            fail(ErrorKind::ClusterError, t->name + ".spawn(cluster=True) needs a cluster: run the program with --cluster URL");
        actor_cluster_spawn_hook(cx, name, c->ref);
    }
    return c->ref;
}

}  // namespace

Value actor_spawn_attr(const Value& type) {
    return native_method("spawn", actor_spawn, type, kAnyKeywords);
}

bool actor_state_attr(Interp&, StructObj* s, std::string_view name, Value& out) {
    if (s->fields.size() <= s->type->fields.size()) return false;  // not a live actor's state
    const Value& ref = s->fields.back();
    if (name == "ref") {
        out = ref;
        return true;
    }
    if (name == "stop") {
        out = native_method("stop", ref_stop, ref, "reason");
        return true;
    }
    return false;
}

// ---------------------------------------------------------------------------
// monitor, link, whereis

namespace {

Value bi_monitor(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 1) fail(ErrorKind::TypeError, "monitor() takes one ActorRef");
    if (Value remote; actor_cluster_monitor_hook && actor_cluster_monitor_hook(cx, a.pos[0], remote)) return remote;
    ActorRefObj* r = ref_arg(a.pos[0], "monitor");
    Value ch = new_channel_value(1);
    auto c = target(r, false);
    bool now = !c;
    if (c) {
        std::lock_guard<std::mutex> g(c->mu);
        if (c->finalized.load()) {
            now = true;
        } else {
            c->monitors.push_back(ch);
            c->watched = true;
        }
    }
    if (now) {
        // A stopped actor: the notice comes at once, with ActorStopped as the reason.
        send_down_notice(ch, a.pos[0], make_error(ErrorKind::ActorStopped, "the actor was already stopped"));
    }
    share(ch);
    return ch;
}

Value bi_link(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 2) fail(ErrorKind::TypeError, "link() takes two ActorRefs");
    auto ca = target(ref_arg(a.pos[0], "link"), false), cb = target(ref_arg(a.pos[1], "link"), false);
    if (!ca || !cb) fail(ErrorKind::ActorStopped, "link(): the actor is stopped");
    if (ca == cb) return Value();
    for (auto* c : {ca.get(), cb.get()})
        if (c->finalized.load()) fail(ErrorKind::ActorStopped, "link(): actor " + c->label() + " is stopped");
    auto add = [](ActorCore& x, const std::shared_ptr<ActorCore>& y) {
        std::lock_guard<std::mutex> g(x.mu);
        for (auto& w : x.links)
            if (w.lock() == y) return;  // idempotent
        x.links.push_back(y);
        x.watched = true;
    };
    add(*ca, cb);
    add(*cb, ca);
    return Value();
}

Value bi_whereis(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.pos[0].is(ObjType::Str)) fail(ErrorKind::TypeError, "whereis() takes a name (str)");
    ActorSystem& sys = system_of(interp_of(cx).vm());
    {
        std::lock_guard<std::mutex> g(sys.mu);
        auto it = sys.names.find(a.pos[0].as<StrObj>()->data);
        std::shared_ptr<ActorCore> c = it == sys.names.end() ? nullptr : it->second.lock();
        if (c && c->phase.load() < kDone) return c->ref;
    }
    // Not here: an actor of another process of the program's cluster, if it has one.
    if (actor_cluster_whereis_hook) return actor_cluster_whereis_hook(cx, a.pos[0].as<StrObj>()->data);
    return Value();
}

// ---------------------------------------------------------------------------
// Internals for the supervisor written in Weft (vm/actors_lib.cpp)

struct SlotObj : OpaqueObj {
    std::shared_ptr<SupSlot> slot;
    explicit SlotObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
const OpaqueClass kSlotClass{"slot"};

SlotObj* slot_arg(const Value& v) {
    if (!v.is(ObjType::Opaque) || v.as<OpaqueObj>()->cls != &kSlotClass) fail(ErrorKind::TypeError, "expected a slot");
    return static_cast<SlotObj*>(v.as<OpaqueObj>());
}

// __slot() -> (slot, stable ref)
Value bi_slot_new(CallContext&, const CallArgs&) {
    auto* s = new SlotObj(&kSlotClass);
    Value sv = Value::adopt(s);
    s->slot = std::make_shared<SupSlot>();
    return make_tuple({sv, make_ref(nullptr, s->slot)});
}

// __slot_set(slot, ref_or_None, final=False): installs an instance (waking waiting senders).
Value bi_slot_set(CallContext&, const CallArgs& a) {
    if (a.pos.size() < 2) fail(ErrorKind::TypeError, "__slot_set(slot, ref, final)");
    auto& s = *slot_arg(a.pos[0])->slot;
    std::shared_ptr<ActorCore> cur;
    if (!a.pos[1].is_none()) cur = target(ref_arg(a.pos[1], "__slot_set"), false);
    bool final = a.pos.size() > 2 && truthy(a.pos[2]);
    rt::Channel<int> old;
    {
        std::lock_guard<std::mutex> g(s.mu);
        s.cur = cur;
        s.final = s.final || final;
        old = s.changed;
        s.changed = rt::Channel<int>::make(1);
    }
    old.close();
    return Value();
}

// __watch(child_ref, supervisor_ref, id): the supervisor is told `_child_down(id, reason, ref)`.
Value bi_watch(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 3) fail(ErrorKind::TypeError, "__watch(child, supervisor, id)");
    auto child = target(ref_arg(a.pos[0], "__watch"), false);
    auto sup = target(ref_arg(a.pos[1], "__watch"), false);
    if (!child || !sup) return Value();
    share(a.pos[2]);
    std::lock_guard<std::mutex> g(child->mu);
    child->supervisors.emplace_back(sup, a.pos[2]);
    child->watched = true;
    return Value();
}

// __kill(ref, reason): cancels the handler in progress and stops the actor (shutdown expired).
Value bi_kill(CallContext&, const CallArgs& a) {
    if (a.pos.empty()) fail(ErrorKind::TypeError, "__kill(ref, reason)");
    auto c = target(ref_arg(a.pos[0], "__kill"), false);
    if (!c || c->phase.load() == kDone) return Value();
    c->killing.store(true);
    request_stop(*c, a.pos.size() > 1 ? a.pos[1] : Value());
    rt::TaskRef t;
    {
        std::lock_guard<std::mutex> g(c->mu);
        t = c->task_ref;
    }
    if (t) t->cancel();
    wait_stopped(*c);
    return Value();
}

// __stop_within(ref, seconds_or_None): stop; kill after `seconds`. True when it stopped in time.
Value bi_stop_within(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 2) fail(ErrorKind::TypeError, "__stop_within(ref, seconds)");
    auto c = target(ref_arg(a.pos[0], "__stop_within"), false);
    if (!c || c->phase.load() == kDone) return Value::boolean(true);
    if (a.pos[1].is_none()) {
        stop_and_wait(*c, Value());
        return Value::boolean(true);
    }
    double secs = a.pos[1].is_int() ? double(a.pos[1].as_int()) : a.pos[1].as_float();
    request_stop(*c, Value());
    rt::CancelScopeOptions o;
    o.timeout = secs;
    bool in_time = rt::CancelScope::run(o, [&](rt::CancelScope&) { wait_stopped(*c); });
    if (in_time) return Value::boolean(true);
    Value args[2] = {a.pos[0], make_error(ErrorKind::Cancelled, "killed after its shutdown time")};
    bi_kill(cx, CallArgs{std::span<const Value>(args, 2), {}});
    return Value::boolean(false);
}

Value bi_is_actor_type(CallContext&, const CallArgs& a) {
    return Value::boolean(a.pos.size() == 1 && a.pos[0].is(ObjType::StructType) &&
                          a.pos[0].as<StructTypeObj>()->actor_kind != 0);
}

Value bi_is_callable(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) return Value::boolean(false);
    const Value& v = a.pos[0];
    return Value::boolean(v.is(ObjType::Function) || v.is(ObjType::Native) || v.is(ObjType::BoundMethod) ||
                          (v.is(ObjType::StructType) && !v.as<StructTypeObj>()->actor_kind) ||
                          (v.is(ObjType::Opaque) && (v.as<OpaqueObj>()->cls->call || v.as<OpaqueObj>()->cls->call_kw)));
}

Value bi_is_supervisor(CallContext&, const CallArgs& a) {
    ActorRefObj* r = a.pos.size() == 1 ? as_ref(a.pos[0]) : nullptr;
    auto c = r ? target(r, false) : nullptr;
    return Value::boolean(c && is_supervisor(*c));
}

Value bi_is_ref(CallContext&, const CallArgs& a) { return Value::boolean(a.pos.size() == 1 && as_ref(a.pos[0])); }

Value bi_type_name(CallContext&, const CallArgs& a) {
    return make_str(a.pos.size() == 1 ? type_name(a.pos[0]) : std::string("?"));
}

Value bi_shutting_down(CallContext& cx, const CallArgs&) {
    return Value::boolean(system_of(interp_of(cx).vm()).shutting_down.load());
}

Value bi_count_restart(CallContext& cx, const CallArgs&) {
    system_of(interp_of(cx).vm()).restarts.fetch_add(1, std::memory_order_relaxed);
    return Value();
}

}  // namespace

// ---------------------------------------------------------------------------
// The program's actor system

void actors_begin_root(Vm& vm) {
    ActorSystem& sys = system_of(vm);
    std::lock_guard<std::mutex> g(sys.mu);
    sys.nursery = rt::current_nursery();
}

void actors_shutdown(Vm& vm, bool raise_failures) {
    if (!vm.actor_system) return;
    ActorSystem& sys = *vm.actor_system;
    sys.shutting_down.store(true);
    struct Reset {
        ActorSystem& sys;
        ~Reset() { sys.shutting_down.store(false); }  // the REPL goes on after an input
    } reset{sys};
    for (;;) {
        std::shared_ptr<ActorCore> last;
        {
            std::lock_guard<std::mutex> g(sys.mu);
            while (!sys.order.empty() && !last) {
                last = sys.order.back().lock();
                sys.order.pop_back();
                if (last && last->phase.load() == kDone) last.reset();
            }
        }
        if (!last) break;
        stop_and_wait(*last, Value());
    }
    std::vector<Value> failures;
    {
        std::lock_guard<std::mutex> g(sys.mu);
        failures.swap(sys.failures);
    }
    if (raise_failures && !failures.empty()) throw WeftError(failures.front());
}

namespace {
// The actors not yet stopped, in spawn order (held, so they can be read outside the lock).
std::vector<std::shared_ptr<ActorCore>> live_actors(ActorSystem& sys) {
    std::vector<std::shared_ptr<ActorCore>> live;
    std::lock_guard<std::mutex> g(sys.mu);
    for (auto& w : sys.order)
        if (auto c = w.lock(); c && c->phase.load() < kDone) live.push_back(std::move(c));
    return live;
}
}  // namespace

std::string actor_task_note(Vm& vm, const rt::Task* t) {
    if (!vm.actor_system || !t) return "";
    for (auto& c : live_actors(*vm.actor_system)) {
        if (c->task.load(std::memory_order_acquire) != t) continue;
        const StrObj* cur = c->current.load(std::memory_order_acquire);
        return "actor " + c->label() + (cur ? " handling '" + cur->data + "'" : "");
    }
    return "";
}

void append_actor_snapshots(Vm& vm, std::vector<Value>& out) {
    if (!vm.actor_system) return;
    std::vector<std::shared_ptr<ActorCore>> live = live_actors(*vm.actor_system);
    auto put = [](Value& d, const char* k, Value v) { dict_unshare(d)->table.insert(make_str(k), std::move(v)); };
    for (auto& c : live) {
        const StrObj* now = c->current.load(std::memory_order_acquire);
        std::string cur = now ? now->data : std::string();
        Value d = make_dict();
        put(d, "id", make_str(c->label()));
        put(d, "kind", make_str(c->agent ? "agent" : "actor"));
        put(d, "state", make_str(c->box->suspended() ? "suspended" : cur.empty() ? "idle" : "handling"));
        put(d, "handling", cur.empty() ? Value() : make_str(cur));
        put(d, "mailbox", Value::integer(int64_t(c->box->len())));
        put(d, "handled", Value::integer(int64_t(c->box->handled())));
        put(d, "dead_letters", Value::integer(int64_t(c->dead_letters.load())));
        put(d, "peak_mailbox", Value::integer(int64_t(c->box->peak())));
        out.push_back(std::move(d));
    }
}

ActorStats actor_stats(Vm& vm) {
    ActorStats s;
    if (!vm.actor_system) return s;
    ActorSystem& sys = *vm.actor_system;
    s.spawned = sys.spawned.load();
    s.messages = sys.messages.load();
    s.dead_letters = sys.dead_letters.load();
    s.dropped = sys.dropped.load();
    s.restarts = sys.restarts.load();
    s.peak_mailbox = sys.peak.load();
    return s;
}

void register_actor_builtins(Vm& vm) {
    auto native = [&](const char* name, NativeFn fn) { vm.add_builtin(name, Value::adopt(new NativeObj(name, fn))); };
    native("monitor", bi_monitor);
    native("link", bi_link);
    native("whereis", bi_whereis);
    native("__slot", bi_slot_new);
    native("__slot_set", bi_slot_set);
    native("__watch", bi_watch);
    native("__kill", bi_kill);
    native("__stop_within", bi_stop_within);
    native("__count_restart", bi_count_restart);
    native("__shutting_down", bi_shutting_down);
    native("__is_actor_type", bi_is_actor_type);
    native("__is_callable", bi_is_callable);
    native("__is_supervisor", bi_is_supervisor);
    native("__is_ref", bi_is_ref);
    native("__type_name", bi_type_name);
    register_actor_lib_builtins(vm);
}

}  // namespace weft
