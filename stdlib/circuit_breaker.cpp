// circuit_breaker.cpp — the circuit_breaker(f, threshold=5, recovery=60s) builtin (spec section 10,
// "Event bus and circuit breaker").
//
// A breaker is a host object that is called like the function it wraps. It counts consecutive
// failures of its calls; after `threshold` of them it opens and refuses calls with CircuitOpen,
// without calling f, so a failing dependency is not hammered and callers fail at once. After
// `recovery` seconds it lets one trial call through (half-open) while concurrent callers still
// fail fast; the trial's success closes the circuit, its failure opens it again for another
// `recovery`. This is the pattern of Nygard's "Release It!" (2007), as in Hystrix, pybreaker
// and Akka's CircuitBreaker.
//
// Why it is built this way:
// - Calls of a breaker are deferred like calls of a Weft function (OpaqueClass::deferrable), so
//   `a = cb(x); b = cb(y)` run concurrently, as `f(x)` and `f(y)` would. Admission is decided
//   when the call starts running, not when it is written.
// - The state is behind a mutex held only to decide and to record outcomes, never while f runs:
//   calls run on several workers at once.
// - Each state change starts a new generation; a call's outcome counts only if the generation it
//   was admitted in is still current. A slow call admitted while closed that finishes after the
//   circuit opened (or after a trial closed it again) says nothing about the present, so it
//   neither reopens nor closes anything.
// - Only errors count as failures (`Error` and its subclasses). `Cancelled`, `SystemExit` and
//   `KeyboardInterrupt` say nothing about f's health: they change no count, and a trial ended
//   by one gives the trial slot back (the next call becomes the trial).
// - The open-to-half-open change happens lazily, when a call or `cb.state` looks at the breaker
//   after `recovery` has passed: no timer, nothing to clean up.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/native.h"
#include "vm/tasks.h"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;

enum class Circuit : uint8_t { Closed, Open, HalfOpen };

const char* circuit_name(Circuit c) {
    switch (c) {
        case Circuit::Closed: return "closed";
        case Circuit::Open: return "open";
        case Circuit::HalfOpen: return "half_open";
    }
    return "closed";
}

struct BreakerObj : OpaqueObj {
    explicit BreakerObj(const OpaqueClass* c) : OpaqueObj(c) {}
    // Set at construction, read-only afterwards (read without the lock).
    Value fn;
    int64_t threshold = 5;
    double recovery = 60;  // seconds
    std::string label;     // f's name, for messages

    // Guarded by mu.
    mutable std::mutex mu;
    Circuit state = Circuit::Closed;
    int64_t failures = 0;        // consecutive failures since the last success
    uint64_t generation = 0;     // bumped by every state change
    bool trial_running = false;  // half-open: the trial call has been let through
    Clock::time_point opened_at{};
    std::string last_error;  // "Kind: message" of the failure that last opened the circuit

    // Open -> half-open once `recovery` has passed since the circuit opened. Caller holds mu.
    void advance(Clock::time_point now) {
        if (state == Circuit::Open && now - opened_at >= std::chrono::duration<double>(recovery)) {
            state = Circuit::HalfOpen;
            trial_running = false;
            ++generation;
        }
    }
};

// f's name as messages show it: "fetch" for a function, else its repr.
std::string callee_label(const Value& f) {
    if (f.is(ObjType::Function)) return f.as<FunctionObj>()->proto->chunk->name;
    if (f.is(ObjType::Native)) return f.as<NativeObj>()->name;
    if (f.is(ObjType::BoundMethod)) return callee_label(f.as<BoundMethodObj>()->func);
    return callable_repr(f);
}

bool is_callable(const Value& f) {
    if (!f.is_obj()) return false;
    switch (f.as_obj()->type) {
        case ObjType::Function:
        case ObjType::Native:
        case ObjType::BoundMethod:
        case ObjType::StructType:
        case ObjType::TypeObj:
            return true;
        case ObjType::Opaque: {
            auto* c = f.as<OpaqueObj>()->cls;
            return c->call || c->call_kw;
        }
        default:
            return false;
    }
}

// Is the error value an `Error` (a failure of f), rather than Cancelled, SystemExit or
// KeyboardInterrupt, which stand apart (spec sections 6 and 9)?
bool counts_as_failure(const Value& err) {
    if (!err.is(ObjType::Struct)) return true;  // anything raised that is not an error value
    const StructTypeObj* t = err.as<StructObj>()->type;
    while (t->base) t = t->base;
    return t->builtin_error == int(ErrorKind::Error);
}

std::string error_summary(const Value& err) {
    if (!err.is(ObjType::Struct) || !err.as<StructObj>()->error) return repr(err);
    auto* s = err.as<StructObj>();
    return s->type->name + ": " + s->error->message;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g s", s);
    return buf;
}

enum class Outcome : uint8_t { Success, Failure, Neither };

// Records how an admitted call ended. `trial` says it was the half-open trial.
void record(BreakerObj* b, uint64_t generation, bool trial, Outcome o, const std::string& error) {
    std::lock_guard<std::mutex> g(b->mu);
    if (generation != b->generation) return;  // admitted under a state that has since changed
    auto reopen = [&] {
        b->state = Circuit::Open;
        b->opened_at = Clock::now();
        b->trial_running = false;
        b->last_error = error;
        ++b->generation;
    };
    switch (o) {
        case Outcome::Success:
            b->failures = 0;
            if (trial) {
                b->state = Circuit::Closed;
                b->trial_running = false;
                ++b->generation;
            }
            break;
        case Outcome::Failure:
            ++b->failures;
            if (trial || b->failures >= b->threshold) reopen();
            break;
        case Outcome::Neither:
            if (trial) b->trial_running = false;  // the next call is the trial
            break;
    }
}

Value breaker_call(OpaqueObj* self, CallContext& cx, const CallArgs& a) {
    auto* b = static_cast<BreakerObj*>(self);
    uint64_t generation;
    bool trial = false;
    {
        std::lock_guard<std::mutex> g(b->mu);
        Clock::time_point now = Clock::now();
        b->advance(now);
        if (b->state == Circuit::Open) {
            double left = std::chrono::duration<double>(b->opened_at - now).count() + b->recovery;
            throw WeftError(ErrorKind::CircuitOpen,
                            "circuit breaker of " + b->label + " is open after " + std::to_string(b->failures) +
                                " consecutive failure" + (b->failures == 1 ? "" : "s") + " (last: " + b->last_error +
                                "); next trial in " + seconds_text(std::max(0.0, left)));
        }
        if (b->state == Circuit::HalfOpen) {
            if (b->trial_running)
                throw WeftError(ErrorKind::CircuitOpen,
                                "circuit breaker of " + b->label + " is half-open: a trial call is in progress");
            b->trial_running = true;
            trial = true;
        }
        generation = b->generation;
    }
    Value fn = b->fn;
    Value out;
    try {
        out = cx.call_kw(fn, a.pos, a.kw);
    } catch (WeftError& e) {
        // A native f reports (kind, message); a Weft f's error comes as its value.
        bool failure;
        std::string what;
        if (e.error.is_none()) {
            failure = e.kind != ErrorKind::Cancelled && e.kind != ErrorKind::SystemExit &&
                      e.kind != ErrorKind::KeyboardInterrupt;
            what = std::string(error_kind_name(e.kind)) + ": " + e.message;
        } else {
            failure = counts_as_failure(e.error);
            what = error_summary(e.error);
        }
        record(b, generation, trial, failure ? Outcome::Failure : Outcome::Neither, what);
        throw;
    } catch (...) {
        // The runtime's cancellation and other unwinding: not a verdict on f.
        record(b, generation, trial, Outcome::Neither, std::string());
        throw;
    }
    // A promise returned by f (a deferred `return g(x)`) is f's result still running: its
    // outcome is the call's outcome, so it is awaited here.
    if (out.is(ObjType::Promise)) {
        try {
            static_cast<Interp&>(cx).force(out);
        } catch (WeftError& e) {
            bool failure = e.error.is_none() ? e.kind != ErrorKind::Cancelled : counts_as_failure(e.error);
            record(b, generation, trial, failure ? Outcome::Failure : Outcome::Neither,
                   e.error.is_none() ? std::string(error_kind_name(e.kind)) + ": " + e.message : error_summary(e.error));
            throw;
        } catch (...) {
            record(b, generation, trial, Outcome::Neither, std::string());
            throw;
        }
    }
    record(b, generation, trial, Outcome::Success, std::string());
    return out;
}

bool breaker_attr(const OpaqueObj* self, std::string_view n, Value& out) {
    auto* b = const_cast<BreakerObj*>(static_cast<const BreakerObj*>(self));
    if (n == "threshold") {
        out = Value::integer(b->threshold);
        return true;
    }
    if (n == "recovery") {
        out = Value::number(b->recovery);
        return true;
    }
    std::lock_guard<std::mutex> g(b->mu);
    b->advance(Clock::now());
    if (n == "state") {
        out = make_str(circuit_name(b->state));
        return true;
    }
    if (n == "failures") {
        out = Value::integer(b->failures);
        return true;
    }
    return false;
}

std::string breaker_repr(const OpaqueObj* self) {
    auto* b = const_cast<BreakerObj*>(static_cast<const BreakerObj*>(self));
    std::lock_guard<std::mutex> g(b->mu);
    b->advance(Clock::now());
    return "<circuit_breaker of " + b->label + ": " + circuit_name(b->state) + ", " + std::to_string(b->failures) +
           " of " + std::to_string(b->threshold) + " failures>";
}

void breaker_share_children(OpaqueObj* self) { share(static_cast<BreakerObj*>(self)->fn); }

const MethodInfo kBreakerMethods[] = {{nullptr, nullptr, false}};

const OpaqueClass kBreakerClass = [] {
    OpaqueClass c{"circuit_breaker", kBreakerMethods, breaker_attr, breaker_repr};
    c.share_children = breaker_share_children;
    c.call_kw = breaker_call;
    c.deferrable = true;
    return c;
}();

// circuit_breaker(f, threshold=5, recovery=60s)
Value bi_circuit_breaker(CallContext&, const CallArgs& a) {
    stdlib::Params p(a, "circuit_breaker", {"f", "threshold", "recovery"}, 1);
    const Value& f = *p.get(0);
    if (!is_callable(f))
        throw WeftError(ErrorKind::TypeError,
                        "circuit_breaker() argument 'f' must be callable, not " + type_name(f));
    int64_t threshold = 5;
    if (const Value* t = p.get(1)) {
        if (!t->is_int() || t->is_bool()) p.bad(1, "int");
        threshold = t->as_int();
        if (threshold < 1)
            throw WeftError(ErrorKind::ValueError,
                            "circuit_breaker() threshold must be at least 1, not " + std::to_string(threshold));
    }
    double recovery = 60;
    if (const Value* r = p.get(2)) {
        if (!r->is_number() || r->is_bool()) p.bad(2, "a number of seconds");
        recovery = r->as_number();
        if (std::isnan(recovery) || recovery < 0)
            throw WeftError(ErrorKind::ValueError,
                            "circuit_breaker() recovery must be a non-negative number of seconds, not " +
                                float_repr(recovery));
    }
    auto* b = new BreakerObj(&kBreakerClass);
    Value v = Value::adopt(b);
    b->fn = f;
    b->threshold = threshold;
    b->recovery = recovery;
    b->label = callee_label(f);
    return v;
}

}  // namespace

void register_circuit_breaker_builtin(Vm& vm) {
    auto* o = new NativeObj("circuit_breaker", bi_circuit_breaker);
    o->kwargs = "f threshold recovery";
    vm.add_builtin("circuit_breaker", Value::adopt(o));
}

}  // namespace weft
