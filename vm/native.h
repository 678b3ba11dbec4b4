// native.h — how C++ code (builtins, methods, standard modules) is called from
// Weft and how it reports errors.
//
// A native function receives its positional and keyword arguments as spans and
// returns a Value. It reports a Weft error by throwing WeftError; the
// interpreter turns that into an ordinary Weft exception at the call site (with
// the traceback of the calling frames). A native that needs to call back into
// Weft (sorted's key=, map, filter, ...) uses CallContext::call, which runs the
// callee to completion and rethrows any Weft error as a WeftError carrying the
// error value, so it propagates through the native unchanged.
#pragma once

#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "vm/object.h"

namespace weft {

// The built-in error types (spec section 9). Order matters: it indexes the
// interpreter's table of error StructTypeObjs.
enum class ErrorKind : uint8_t {
    Error, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError,
    AttributeError, NameError, RecursionError, MemoryError, AssertionError, TimeoutError, ChannelClosed,
    PermissionDenied, IOError, NetworkError, ProcessError, ActorStopped, Deadlock, ErrorGroup,
    PartialFailure, Cancelled,
    SystemExit,  // exit(): stands apart from Error like Cancelled (vm/sys.h)
    KeyboardInterrupt,  // SIGINT's cancellation of the main task: apart from Error (cli/signals.h)
    DatabaseError,  // a subclass of IOError; e.sqlstate (stdlib/postgres.cpp)
    MailboxFull,    // a send to a full mailbox with overflow="error", a dropped ask (spec section 10)
    CircuitOpen,    // a call refused by an open circuit_breaker (stdlib/circuit_breaker.cpp)
    ClusterError,   // cluster mode: a value that cannot cross, no workers, the NATS server gone (cluster/)
    WorkerLost,     // a subclass of ClusterError: a remote task's workers died more than `retries` times
    Count
};
const char* error_kind_name(ErrorKind k);

// Thrown by natives. Either a (kind, message) pair, or a complete error value
// (`error` non-None) that is being propagated.
class WeftError : public std::exception {
public:
    WeftError(ErrorKind k, std::string msg) : kind(k), message(std::move(msg)) {}
    explicit WeftError(Value err) : kind(ErrorKind::Error), error(std::move(err)) {}
    const char* what() const noexcept override { return message.c_str(); }
    ErrorKind kind;
    std::string message;
    Value error;
};

struct KwArg {
    std::string_view name;
    Value value;
};

struct CallArgs {
    std::span<const Value> pos;
    std::span<const KwArg> kw;
    // Finds a keyword argument or returns nullptr.
    const Value* find_kw(std::string_view name) const {
        for (auto& k : kw)
            if (k.name == name) return &k.value;
        return nullptr;
    }
};

// The keywords a native or built-in method accepts (NativeObj::kwargs, MethodInfo::kwargs):
//   nullptr           it takes no keyword arguments;
//   "a b c"           it takes exactly these (space-separated names);
//   kAnyKeywords      it binds them itself (stdlib::Params, allow_kwargs) or passes them on
//                     (attempt, pool.submit, str.format, dict.update).
// The interpreter checks the first two kinds before calling (check_kwargs), so a native that
// reads keywords with find_kw cannot silently ignore a misspelt one, and a native without a
// declaration rejects every keyword.
inline constexpr const char* kAnyKeywords = "*";

// TypeError "<fn>() got an unexpected keyword argument '<name>'" (CPython's wording) for the
// first keyword of `kw` that `accepted` (see kAnyKeywords) does not list. `fn` is the name the
// message shows. Cost: nothing when `kw` is empty. Thread-safe (reads only).
inline void check_kwargs(const char* accepted, std::string_view fn, std::span<const KwArg> kw) {
    if (kw.empty() || (accepted && accepted[0] == '*' && accepted[1] == 0)) return;
    for (auto& k : kw) {
        bool ok = false;
        for (std::string_view rest = accepted ? accepted : ""; !rest.empty() && !ok;) {
            size_t sp = rest.find(' ');
            ok = rest.substr(0, sp) == k.name;
            rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        }
        if (!ok)
            throw WeftError(ErrorKind::TypeError, std::string(fn) + "() got an unexpected keyword argument '" +
                                                      std::string(k.name) + "'");
    }
}

struct CapabilitySet;  // vm/capabilities.h

// Implemented by the interpreter.
class CallContext {
public:
    // The capabilities of the running task (the interpreter never returns null;
    // contexts without a program, such as unit-test stubs, may). Effectful natives
    // check them before acting and raise PermissionDenied naming the flag that
    // would allow it.
    virtual std::shared_ptr<const CapabilitySet> capabilities() const { return nullptr; }
    // Replaces the running task's capabilities (restrict blocks narrow them;
    // the caller guarantees the new set is no wider).
    virtual void set_capabilities(std::shared_ptr<const CapabilitySet>) {}

    virtual ~CallContext() = default;
    // Calls any callable with positional arguments; runs it to completion.
    // Throws WeftError (with the error value) when the callee raises.
    virtual Value call(const Value& callee, std::span<const Value> args) = 0;
    virtual Value call_kw(const Value& callee, std::span<const Value> args,
                          std::span<const KwArg> kw) = 0;
    // Writes to the program's standard output (buffered by the interpreter).
    virtual void write_stdout(std::string_view s) = 0;
    // Writes out what the program's standard output holds (print(flush=True), sys.stdout.flush()).
    virtual void flush_stdout() {}
    // Reads one line from standard input without the newline; false at EOF.
    virtual bool read_line(std::string& out) = 0;
    // The caller is about to do something that may wait (iterate a channel, ...): the
    // interpreter counts it for vm/quick_calls.h. Other contexts ignore it.
    virtual void note_may_wait() {}
};

// A plain builtin: f(args...).
using NativeFn = Value (*)(CallContext& cx, const CallArgs& args);
// A method of a built-in type. `self` is the receiver; for methods flagged
// `mutates`, the interpreter guarantees `self` is uniquely owned (it has
// already copied shared storage), so the method may change it in place.
using MethodFn = Value (*)(CallContext& cx, Value& self, const CallArgs& args);

struct NativeObj : Obj {
    std::string name;
    NativeFn fn = nullptr;
    MethodFn method = nullptr;  // bound built-in method when non-null
    Value self;                 // receiver of a bound method
    bool mutates = false;
    bool lazy_args = false;  // takes promises as they are (race, ...): no forcing
    // Can take time (network, files, processes, sleep): deferred like a Weft
    // function in a deferral position (spec section 5); set by Vm::import_module.
    bool blocking = false;
    // Only computes (core builtins but input(); json, re, math, random, uuid, time but sleep):
    // calling it cannot wait. Any other native may, which keeps the deferred calls of the
    // function calling it from being predicted quick (vm/quick_calls.h).
    bool computes = false;
    // The keywords it accepts, checked by the interpreter before the call (see kAnyKeywords).
    const char* kwargs = nullptr;
    NativeObj(std::string n, NativeFn f) : Obj(ObjType::Native), name(std::move(n)), fn(f) {}
};

struct MethodInfo {
    const char* name;
    MethodFn fn;
    bool mutates;  // changes the receiver (append, sort, update, add, ...)
    // The keywords it accepts, checked by the interpreter before the call (see kAnyKeywords).
    const char* kwargs = nullptr;
};

}  // namespace weft
