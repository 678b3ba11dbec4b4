// embed.cpp — the embedding API of include/weft/weft.hpp on top of the VM.
//
// An Engine owns a Vm (the VM's per-program state: modules, globals, error types, limits,
// output) and a registry of host functions and host types. Every host call (exec, eval, call,
// call_async) is a root task of the Vm (Vm::run_root / start_root, vm/vm_embed.cpp) with its own
// cancel scope, registered here so that interrupt() and Future::cancel reach it from any thread.
//
// Values cross by wrapping: a public weft::Value holds a ValueRep, which holds the internal
// value (share()d: its counts are atomic, so any host thread may copy and drop it) and the
// Engine core it came from (kept alive by it). Host functions are opaque callable objects
// (HostFnObj) whose call converts the arguments, runs the C++ function — inline (sync), on the
// blocking pool (blocking) or by parking the task on an rt::oneshot that a Completion resolves
// from any thread (async) — and maps C++ exceptions to Weft errors by the table in
// docs/embedding.md.
//
// Inside the library the public API is weft::api (see weft.hpp); unqualified names here are the
// API's, and weft::X names the VM's internals.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>
#include <typeindex>

#include "compiler/codegen.h"
#include "compiler/diagnostic.h"
#include "compiler/parser.h"
#include "embed/program.h"
#include "stdlib/stdlib.h"
#include "vm/block_cache.h"
#include "vm/capabilities.h"
#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/limits.h"
#include "vm/native.h"
#include "vm/task_context.h"
#include "vm/tasks.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/oneshot.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"
#include "weft/weft.hpp"

namespace weft::api {

using IValue = ::weft::Value;  // the VM's value
using IKwArg = ::weft::KwArg;

namespace detail {

// ------------------------------------------------------------------------------------ cores

using RecordMarks = std::vector<std::pair<const void*, const std::type_info*>>;

struct ValueRep {
    IValue v;
    std::shared_ptr<EngineCore> engine;  // keeps the objects' engine alive (null: plain data)
    std::string keyword;                 // a weft::kw() argument: its name
    bool is_keyword = false;
    // A host object made on a host thread (convert<shared_ptr<T>>::to): the internal object is
    // made when the value enters an Engine, which knows the type's description.
    std::shared_ptr<void> host_ptr;
    const std::type_info* host_type = nullptr;
    // WEFT_RECORD values in this value (the record's own dict, or dicts inside a container made
    // by list/tuple/dict/set): each dict object with its C++ type. unwrap() turns them into the
    // Engine's def_struct types; null when there are none (the common case).
    std::shared_ptr<const RecordMarks> records;
    ~ValueRep();
};

struct HostFnObj;

// A registered host type (Engine::def_type<T>).
struct TypeDesc {
    std::string name;
    std::type_index type{typeid(void)};
    SyncFn constructor;
    std::map<std::string, SyncFn, std::less<>> methods;
    std::map<std::string, BlockingFn, std::less<>> blocking_methods;  // method_blocking
    std::map<std::string, AsyncFn, std::less<>> async_methods;        // method_async
    std::map<std::string, std::function<Value(const Value&)>, std::less<>> properties;
    std::function<std::string(const Value&)> repr;
    bool serialized = false;
    ::weft::OpaqueClass cls{};  // type() of instances says `name`
};

// One running call, for interrupt() and Future::cancel.
struct CallRec {
    std::mutex mu;
    rt::CancelScope* scope = nullptr;  // while the root task runs inside it
    bool interrupted = false;          // interrupt() / cancel() asked for it
    bool limited = false;              // a step or output limit ran out
    void cancel() {
        std::lock_guard<std::mutex> g(mu);
        interrupted = true;
        if (scope) scope->cancel();
    }
    void cancel_for_limit() {
        std::lock_guard<std::mutex> g(mu);
        limited = true;
        if (scope) scope->cancel();
    }
};

// The running calls of an Engine (few at a time): a vector, so that starting a call allocates
// nothing once it has grown (a std::set allocated a node per call). Guarded by calls_mu.
struct CallSet {
    std::vector<std::shared_ptr<CallRec>> items;
    void insert(std::shared_ptr<CallRec> r) { items.push_back(std::move(r)); }
    void erase(const std::shared_ptr<CallRec>& r) {
        for (auto& x : items)
            if (x == r) {
                x = std::move(items.back());
                items.pop_back();
                return;
            }
    }
    bool empty() const noexcept { return items.empty(); }
    std::size_t size() const noexcept { return items.size(); }
    auto begin() { return items.begin(); }
    auto end() { return items.end(); }
};

struct EngineCore : std::enable_shared_from_this<EngineCore> {
    EngineOptions options;
    std::unique_ptr<::weft::Vm> vm;
    Engine* engine = nullptr;  // null once ~Engine ran
    std::atomic<bool> closed{false};
    std::shared_ptr<const ::weft::CapabilitySet> caps;
    // running calls
    std::mutex calls_mu;
    std::condition_variable calls_cv;
    CallSet calls;
    // registrations (the Engine's thread; read by workers once registered)
    std::mutex reg_mu;
    std::map<std::string, std::unique_ptr<ModuleBuilder>, std::less<>> modules;
    std::unique_ptr<ModuleBuilder> globals;
    std::map<std::string, std::vector<std::pair<std::string, IValue>>, std::less<>> module_defs;
    std::unordered_map<std::type_index, std::unique_ptr<TypeDesc>> types;
    // Engine::def_struct: the Weft struct type of each WEFT_RECORD type (owned references).
    std::unordered_map<std::type_index, IValue> record_structs;
    // What the Engine's scripts hold on the heap (Limits::max_memory; vm/mem_account.h): charged
    // while calls with a memory limit run.
    std::unique_ptr<::weft::MemAccount> mem = std::make_unique<::weft::MemAccount>();
    std::atomic<std::uint64_t> calls_total{0}, calls_failed{0};  // EngineStats
    std::atomic<bool> program_started{false};                     // run_program: once per Engine
    std::atomic<bool> program_running{false};                     // while run_program runs
    // Blocking host functions still running on the pool (a cancelled call does not wait for
    // its own; ~Engine does). Guarded by calls_mu; calls_cv is notified when it drops.
    std::size_t blocking_jobs = 0;
    void blocking_started() {
        std::lock_guard<std::mutex> g(calls_mu);
        ++blocking_jobs;
    }
    void blocking_ended() {
        std::lock_guard<std::mutex> g(calls_mu);
        --blocking_jobs;
        calls_cv.notify_all();
    }

    // The Vm stops its runtime when destroyed, which must not happen on one of that runtime's
    // own threads (a Value dropped last in a callback): then it goes on a thread of its own.
    ~EngineCore() {
        if (vm && (rt::current_task() || rt::current_embedder_data() == vm.get()))
            std::thread([v = std::move(vm)]() mutable { v.reset(); }).detach();
    }

    TypeDesc* find_type(const std::type_info& t) {
        std::lock_guard<std::mutex> g(reg_mu);
        auto it = types.find(std::type_index(t));
        return it == types.end() ? nullptr : it->second.get();
    }
};

// The blocks of the ValueReps (std::allocate_shared: control block and ValueRep in one) come
// from a small per-thread cache: a scalar crossing between host and script (a call's arguments
// and result, a host function's) would otherwise cost a malloc and a free each. Blocks freed on
// another thread than the one that made them join that thread's cache. Not under ASan (the cache
// would hide a use after free).
namespace {
#if defined(__SANITIZE_ADDRESS__)
constexpr int kRepCache = 0;
#else
constexpr int kRepCache = 64;
#endif
// One block size is cached: that of the one allocate_shared type (vm/block_cache.h).
using RepBlockCache = ::weft::BlockCache<kRepCache>;
thread_local RepBlockCache t_rep_cache;
// Not inlined: a task's fiber may move to another thread between two uses, and the compiler
// must not keep the first thread's address (runtime/scheduler.cpp, current_worker()).
__attribute__((noinline)) RepBlockCache& rep_cache() noexcept {
    return t_rep_cache;
}

template <class T>
struct RepAlloc {
    using value_type = T;
    RepAlloc() = default;
    template <class U>
    RepAlloc(const RepAlloc<U>&) noexcept {}
    T* allocate(std::size_t n) {
        std::size_t sz = n * sizeof(T);
        if (void* p = rep_cache().take(sz)) return static_cast<T*>(p);
        return static_cast<T*>(::operator new(sz));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (!rep_cache().keep(p, n * sizeof(T))) ::operator delete(p);
    }
    template <class U>
    bool operator==(const RepAlloc<U>&) const noexcept {
        return true;
    }
};
}  // namespace

std::shared_ptr<ValueRep> new_rep() {
    return std::allocate_shared<ValueRep>(RepAlloc<ValueRep>{});
}

// A host thread dropping the last handle on an Engine's objects gives their memory back to the
// Engine's account.
ValueRep::~ValueRep() {
    if (engine && engine->mem) {
        ::weft::MemAccountScope scope(engine->mem.get());
        v = IValue();
    }
}

namespace {

// Which Engine a Vm belongs to (host objects made on a worker find their type through it).
std::mutex g_engines_mu;
std::unordered_map<const ::weft::Vm*, EngineCore*> g_engines;

EngineCore* engine_of(const ::weft::Vm* vm) {
    std::lock_guard<std::mutex> g(g_engines_mu);
    auto it = g_engines.find(vm);
    return it == g_engines.end() ? nullptr : it->second;
}

// Set while a blocking host function runs on a pool thread (no task there): the blocking Engine
// members must not be called there. Host functions that run in the calling task need no mark
// (rt::current_task() tells), and must not have one: a sync function that calls back into Weft
// (Context::call) may park and end on another thread than it began (a host thread running its
// own call, then a worker), which would leave the first thread's count raised for good.
thread_local int t_in_host_fn = 0;
struct InHostFn {
    InHostFn() { ++t_in_host_fn; }
    ~InHostFn() { --t_in_host_fn; }
};

void require_host_thread(const char* what) {
    if (rt::current_task() || t_in_host_fn > 0)
        throw UsageError(std::string(what) +
                         " was called from a thread running Weft code (inside a host function): it "
                         "would block a worker; use Context::call or call_async");
}

Value wrap(IValue v, const std::shared_ptr<EngineCore>& engine) {
    // Host threads may copy the value concurrently: atomic counts (see plain()).
    ::weft::g_multi_worker.store(true, std::memory_order_relaxed);
    ::weft::share(v);
    auto rep = new_rep();
    bool plain = !v.is_obj() || v.is(::weft::ObjType::Str) || v.is(::weft::ObjType::Bytes);
    rep->v = std::move(v);
    if (!plain) rep->engine = engine;
    return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
}

// wrap() for a value of `core`'s code: takes a reference to the core only when the value
// needs one (plain data does not), which saves two atomic operations per argument of a host
// function call.
Value wrap_of(IValue v, EngineCore* core) {
    bool plain = !v.is_obj() || v.is(::weft::ObjType::Str) || v.is(::weft::ObjType::Bytes);
    if (plain) {
        ::weft::share(v);
        auto rep = new_rep();
        rep->v = std::move(v);
        return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
    }
    return wrap(std::move(v), core->shared_from_this());
}

IValue make_host_obj(EngineCore& core, std::shared_ptr<void> p, const std::type_info& t);

// `v` with the WEFT_RECORD dicts listed in `marks` replaced by instances of the Engine's
// def_struct types (those without one stay dicts); containers holding one are rebuilt, as a
// conversion copies anyway. Called only for values that hold records.
IValue records_to_structs(EngineCore& core, const IValue& v, const RecordMarks& marks) {
    if (!v.is_obj()) return v;
    const void* p = v.as_obj();
    switch (v.as_obj()->type) {
        case ::weft::ObjType::Dict: {
            const auto& table = v.as<::weft::DictObj>()->table;
            ::weft::StructTypeObj* st = nullptr;
            for (const auto& [obj, type] : marks)
                if (obj == p) {
                    std::lock_guard<std::mutex> g(core.reg_mu);
                    auto it = core.record_structs.find(std::type_index(*type));
                    if (it != core.record_structs.end()) st = it->second.as<::weft::StructTypeObj>();
                    break;
                }
            if (st) {
                auto* s = new ::weft::StructObj(st);
                IValue out = IValue::adopt(s);
                for (std::size_t i = 0; i < st->fields.size(); ++i) {
                    std::int64_t at = table.find(::weft::make_str(st->fields[i].name));
                    if (at >= 0) s->fields[i] = records_to_structs(core, table.entry(std::size_t(at)).value, marks);
                }
                return out;
            }
            IValue d = ::weft::make_dict();
            auto* dd = d.as<::weft::DictObj>();
            for (std::size_t i = 0; i < table.end_index(); ++i)
                if (const auto& e = table.entry(i); e.live) dd->table.insert(e.key, records_to_structs(core, e.value, marks));
            return d;
        }
        case ::weft::ObjType::List:
        case ::weft::ObjType::Tuple: {
            const auto& items = v.is(::weft::ObjType::List) ? v.as<::weft::ListObj>()->items : v.as<::weft::TupleObj>()->items;
            std::vector<IValue> out;
            out.reserve(items.size());
            for (const auto& x : items) out.push_back(records_to_structs(core, x, marks));
            return v.is(::weft::ObjType::List) ? ::weft::make_list(std::move(out)) : ::weft::make_tuple(std::move(out));
        }
        default:
            return v;  // (sets cannot hold dicts)
    }
}

// The internal value of `v` for use in `core` (null core: any engine).
IValue unwrap(const Value& v, EngineCore* core) {
    const auto& rep = v.rep();
    if (!rep) return IValue();
    if (rep->host_type && !rep->v.is_obj()) {
        if (!core) throw UsageError("a host object can only be used inside an Engine");
        return make_host_obj(*core, rep->host_ptr, *rep->host_type);
    }
    if (core && rep->engine && rep->engine.get() != core)
        throw UsageError("a value that belongs to another Engine (a function, struct, host object or "
                         "module) was passed to this one");
    if (rep->records && core) {
        bool any;
        {
            std::lock_guard<std::mutex> g(core->reg_mu);
            any = !core->record_structs.empty();
        }
        if (any) {
            IValue out = records_to_structs(*core, rep->v, *rep->records);
            ::weft::share(out);
            return out;
        }
    }
    return rep->v;
}

// The record marks of the values `items` hold, merged (null when none has any).
std::shared_ptr<const RecordMarks> merged_marks(const std::vector<const Value*>& items) {
    std::shared_ptr<RecordMarks> out;
    for (const Value* x : items)
        if (x->rep() && x->rep()->records) {
            if (!out) out = std::make_shared<RecordMarks>();
            out->insert(out->end(), x->rep()->records->begin(), x->rep()->records->end());
        }
    return out;
}
Value with_marks(Value v, std::shared_ptr<const RecordMarks> marks) {
    if (!marks) return v;
    auto rep = new_rep();
    *rep = *v.rep();
    rep->records = std::move(marks);
    return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
}

// ------------------------------------------------------------------------------------ errors

// The kind and bases of an error value: {"ValueError", "Error"}.
std::vector<std::string> error_kinds(const IValue& err) {
    std::vector<std::string> out;
    if (err.is(::weft::ObjType::Struct))
        for (auto* t = err.as<::weft::StructObj>()->type; t; t = t->base) out.push_back(t->name);
    if (out.empty()) out.push_back("Error");
    return out;
}

ScriptError script_error(const IValue& err, const std::shared_ptr<EngineCore>& core) {
    std::string message, trace = "Traceback (most recent call last):\n";
    std::vector<ScriptError> members;
    if (err.is(::weft::ObjType::Struct) && err.as<::weft::StructObj>()->error) {
        auto* s = err.as<::weft::StructObj>();
        message = s->error->message;
        for (auto& line : s->error->trace) {
            std::string entry = "  " + line;
            for (size_t at = 0; (at = entry.find('\n', at)) != std::string::npos; at += 3) entry.insert(at + 1, "  ");
            trace += entry + "\n";
        }
        trace += s->type->name + (message.empty() ? "" : ": " + message) + "\n";
        for (auto& sub : s->error->errors) members.push_back(script_error(sub, core));
    } else {
        message = ::weft::repr(err);
        trace += "Error: " + message + "\n";
    }
    auto kinds = error_kinds(err);
    std::string what = kinds[0] + (message.empty() ? "" : ": " + message);
    return ScriptError(what, std::move(kinds), std::move(message), std::move(trace), wrap(err, core).rep(),
                       std::move(members));
}

api::CompileError compile_error(const ::weft::CompileError& e, std::string_view source) {
    std::string what = ::weft::format_diagnostic(e.diag, source);
    while (!what.empty() && what.back() == '\n') what.pop_back();
    return api::CompileError(what, e.diag.path, e.diag.pos.line, e.diag.pos.col, e.diag.message);
}

::weft::ErrorKind kind_by_name(std::string_view name, bool& found) {
    for (size_t k = 0; k < size_t(::weft::ErrorKind::Count); ++k)
        if (name == ::weft::error_kind_name(::weft::ErrorKind(k))) {
            found = true;
            return ::weft::ErrorKind(k);
        }
    found = false;
    return ::weft::ErrorKind::Error;
}

// A C++ exception leaving a host function `fn`, as the Weft error the script sees (the table of
// docs/embedding.md). Runtime exceptions (cancellation, errors of nested Weft calls) pass.
[[noreturn]] void raise_in_weft(std::exception_ptr e, const std::string& fn) {
    using K = ::weft::ErrorKind;
    try {
        std::rethrow_exception(e);
    } catch (::weft::WeftError&) {
        throw;
    } catch (rt::Cancelled&) {
        throw;
    } catch (rt::Deadlock&) {
        throw;
    } catch (rt::ErrorGroup&) {
        throw;
    } catch (const Raise& r) {
        bool found;
        K k = kind_by_name(r.kind(), found);
        throw ::weft::WeftError(k, found ? r.message() : r.kind() + ": " + r.message());
    } catch (const ConversionError& c) {
        throw ::weft::WeftError(K::TypeError, fn + "(): " + c.what());
    } catch (const ScriptError& s) {
        IValue v = s.value().rep() ? s.value().rep()->v : IValue();
        if (v.is_none()) throw ::weft::WeftError(K::Error, s.what());
        throw ::weft::WeftError(v);
    } catch (const Interrupted&) {
        throw rt::Cancelled();
    } catch (const std::invalid_argument& x) {
        throw ::weft::WeftError(K::ValueError, x.what());
    } catch (const std::domain_error& x) {
        throw ::weft::WeftError(K::ValueError, x.what());
    } catch (const std::length_error& x) {
        throw ::weft::WeftError(K::ValueError, x.what());
    } catch (const std::out_of_range& x) {
        throw ::weft::WeftError(K::IndexError, x.what());
    } catch (const std::range_error& x) {
        throw ::weft::WeftError(K::ValueError, x.what());
    } catch (const std::overflow_error& x) {
        throw ::weft::WeftError(K::OverflowError, x.what());
    } catch (const std::system_error& x) {
        throw ::weft::WeftError(K::IOError, x.what());
    } catch (const std::bad_alloc&) {
        throw ::weft::WeftError(K::Error, "out of memory in " + fn + "()");
    } catch (const UsageError& x) {
        throw ::weft::WeftError(K::Error, fn + "(): " + x.what());
    } catch (const std::exception& x) {
        throw ::weft::WeftError(K::Error, x.what());
    } catch (...) {
        throw ::weft::WeftError(K::Error, "unknown C++ exception in " + fn + "()");
    }
}

// ------------------------------------------------------------------------------------ host fns

enum class FnKind : std::uint8_t { Sync, Blocking, Async, Method };

IValue host_fn_call_kw(::weft::OpaqueObj* self, ::weft::CallContext& cx, const ::weft::CallArgs& args);
std::string host_fn_repr(const ::weft::OpaqueObj* self);
void host_fn_share(::weft::OpaqueObj* self);

const ::weft::OpaqueClass kSyncFnClass{
    "builtin_function", nullptr, nullptr, host_fn_repr, nullptr, nullptr, nullptr, host_fn_share,
    host_fn_call_kw, false};
// Blocking and async host functions can take time: deferred in deferral positions (spec §5).
const ::weft::OpaqueClass kDeferrableFnClass{
    "builtin_function", nullptr, nullptr, host_fn_repr, nullptr, nullptr, nullptr, host_fn_share,
    host_fn_call_kw, true};

}  // namespace

struct CompletionCore {
    std::mutex mu;
    rt::OneshotSender<IValue> tx;
    std::string fn;
    EngineCore* core = nullptr;  // alive while the task waits (the call keeps the Engine)
    bool settled = false;
};

namespace {

struct HostFnObj : ::weft::OpaqueObj {
    std::string name;
    FnKind kind;
    SyncFn sync;
    BlockingFn blocking;
    AsyncFn async;
    IValue bound_self;  // methods of host objects: the receiver
    EngineCore* core;
    std::shared_ptr<rt::Channel<int>> gate;  // DefOptions::serialized: a one-slot semaphore
    HostFnObj(EngineCore* c, std::string n, FnKind k, bool deferrable)
        : OpaqueObj(deferrable ? &kDeferrableFnClass : &kSyncFnClass), name(std::move(n)), kind(k), core(c) {}
};

void host_fn_share(::weft::OpaqueObj* self) {
    ::weft::share(static_cast<HostFnObj*>(self)->bound_self);
}

std::string host_fn_repr(const ::weft::OpaqueObj* self) {
    return "<built-in function " + static_cast<const HostFnObj*>(self)->name + ">";
}

// Parks the task until it holds the gate (serialized functions): channel send on a full
// one-slot channel parks, never blocks the worker.
struct Gate {
    std::shared_ptr<rt::Channel<int>> ch;
    explicit Gate(std::shared_ptr<rt::Channel<int>> c) : ch(std::move(c)) {
        if (ch) ch->send(0);
    }
    ~Gate() {
        if (!ch) return;
        std::optional<int> out;
        (void)ch->try_recv(out);
    }
};

// The storage of a host function call's argument vector, reused by the next call on the thread
// (noinline: see rep_cache()).
__attribute__((noinline)) std::vector<Value>& spare_args() noexcept {
    thread_local std::vector<Value> spare;
    return spare;
}
struct ReturnArgs {
    Args& a;
    ~ReturnArgs() {
        std::vector<Value>& v = a.positional();
        v.clear();
        if (v.capacity() <= 16) spare_args() = std::move(v);
    }
};

IValue host_fn_call_kw(::weft::OpaqueObj* self, ::weft::CallContext& cxb, const ::weft::CallArgs& args) {
    auto* f = static_cast<HostFnObj*>(self);
    auto& in = static_cast<::weft::Interp&>(cxb);
    EngineCore* core = f->core;
    // Arguments come unforced: force promises, then hand the host plain values.
    std::vector<Value> pos = std::move(spare_args());
    pos.clear();
    pos.reserve(args.pos.size() + 1);
    if (!f->bound_self.is_none()) pos.push_back(wrap_of(f->bound_self, core));
    for (auto& v : args.pos) {
        IValue x = v;
        in.force(x);
        pos.push_back(wrap_of(std::move(x), core));
    }
    std::vector<KwArg> kws;
    for (auto& k : args.kw) {
        IValue x = k.value;
        in.force(x);
        kws.push_back(KwArg{std::string(k.name), wrap_of(std::move(x), core)});
    }
    Args a(std::move(pos), std::move(kws));
    ReturnArgs give_back{a};
    Context cx(core->engine, &in);
    Gate gate(f->gate);
    try {
        switch (f->kind) {
            case FnKind::Sync:
            case FnKind::Method:
                return unwrap(f->sync(cx, a), core);
            case FnKind::Blocking: {
                std::function<Value()> thunk = f->blocking(a);  // converts the arguments here, in the task
                // A cancelled task stops waiting at once, but the host function runs on to its
                // end on the pool: the job owns the thunk, and ~Engine waits for the job (the
                // function may use the host's state), counted in blocking_jobs.
                core->blocking_started();
                Value r = rt::run_blocking([thunk = std::move(thunk), core] {
                    struct Done {
                        EngineCore* c;
                        ~Done() { c->blocking_ended(); }
                    } done{core};
                    InHostFn mark;
                    return thunk();
                });
                return unwrap(r, core);
            }
            case FnKind::Async: {
                auto [tx, rx] = rt::oneshot<IValue>();
                auto cc = std::make_shared<CompletionCore>();
                cc->tx = std::move(tx);
                cc->fn = f->name;
                cc->core = core;
                f->async(cx, a, cc);
                cc.reset();  // the host holds it now (or dropped it: BrokenOneshot below)
                IValue v;
                try {
                    v = rx.wait();
                } catch (rt::BrokenOneshot&) {
                    throw ::weft::WeftError(::weft::ErrorKind::Error, f->name + "(): the host dropped its completion");
                }
                return v;
            }
        }
    } catch (...) {
        raise_in_weft(std::current_exception(), f->name);
    }
    return IValue();
}

IValue make_host_fn(EngineCore* core, std::string name, FnKind kind, SyncFn s, BlockingFn b, AsyncFn as,
                    const DefOptions& o) {
    auto* f = new HostFnObj(core, std::move(name), kind, kind == FnKind::Blocking || kind == FnKind::Async);
    f->sync = std::move(s);
    f->blocking = std::move(b);
    f->async = std::move(as);
    if (o.serialized) f->gate = std::make_shared<rt::Channel<int>>(rt::Channel<int>::make(1));
    return IValue::adopt(f);
}

// ------------------------------------------------------------------------------------ host objects

struct HostObj : ::weft::OpaqueObj {
    std::shared_ptr<void> ptr;
    TypeDesc* desc;
    std::shared_ptr<rt::Channel<int>> gate;  // serialized types: one call at a time per object
    HostObj(TypeDesc* d, std::shared_ptr<void> p) : OpaqueObj(&d->cls), ptr(std::move(p)), desc(d) {
        if (d->serialized) gate = std::make_shared<rt::Channel<int>>(rt::Channel<int>::make(1));
    }
};

bool host_obj_get_attr(const ::weft::OpaqueObj* self, std::string_view name, IValue& out) {
    auto* h = static_cast<const HostObj*>(self);
    TypeDesc* d = h->desc;
    EngineCore* core = ::weft::current_vm() ? engine_of(::weft::current_vm()) : nullptr;
    if (!core) return false;
    IValue me = IValue::borrow(const_cast<HostObj*>(h));
    if (auto m = d->methods.find(name); m != d->methods.end()) {
        auto* f = new HostFnObj(core, d->name + "." + std::string(name), FnKind::Method, false);
        f->sync = m->second;
        f->bound_self = me;
        f->gate = h->gate;
        out = IValue::adopt(f);
        return true;
    }
    if (auto m = d->blocking_methods.find(name); m != d->blocking_methods.end()) {
        auto* f = new HostFnObj(core, d->name + "." + std::string(name), FnKind::Blocking, true);
        f->blocking = m->second;
        f->bound_self = me;
        f->gate = h->gate;
        out = IValue::adopt(f);
        return true;
    }
    if (auto m = d->async_methods.find(name); m != d->async_methods.end()) {
        auto* f = new HostFnObj(core, d->name + "." + std::string(name), FnKind::Async, true);
        f->async = m->second;
        f->bound_self = me;
        f->gate = h->gate;
        out = IValue::adopt(f);
        return true;
    }
    if (auto p = d->properties.find(name); p != d->properties.end()) {
        try {
            out = unwrap(p->second(wrap(me, core->shared_from_this())), core);
        } catch (...) {
            raise_in_weft(std::current_exception(), d->name + "." + std::string(name));
        }
        return true;
    }
    return false;
}

std::string host_obj_repr(const ::weft::OpaqueObj* self) {
    auto* h = static_cast<const HostObj*>(self);
    if (h->desc->repr) {
        EngineCore* core = ::weft::current_vm() ? engine_of(::weft::current_vm()) : nullptr;
        try {
            return h->desc->repr(wrap(IValue::borrow(const_cast<HostObj*>(h)),
                                      core ? core->shared_from_this() : nullptr));
        } catch (...) {
        }
    }
    return "<" + h->desc->name + " object>";
}

IValue make_host_obj(EngineCore& core, std::shared_ptr<void> p, const std::type_info& t) {
    TypeDesc* d = core.find_type(t);
    if (!d)
        throw ::weft::WeftError(::weft::ErrorKind::TypeError,
                                std::string("a host object of a C++ type not registered with def_type (") +
                                    t.name() + ")");
    return IValue::adopt(new HostObj(d, std::move(p)));
}

// ------------------------------------------------------------------------------------ calls

// Splits packed arguments (weft::kw markers) into positional and keyword values.
void split_args(std::vector<Value>& packed, EngineCore* core, std::vector<IValue>& pos,
                std::vector<std::string>& kw_names, std::vector<IValue>& kw_values) {
    for (auto& v : packed) {
        const auto& rep = v.rep();
        if (rep && rep->is_keyword) {
            kw_names.push_back(rep->keyword);
            IValue x = unwrap(Value(std::make_shared<ValueRep>(ValueRep{rep->v, rep->engine, {}, false, rep->host_ptr,
                                                                        rep->host_type, rep->records})),
                              core);
            ::weft::share(x);
            kw_values.push_back(std::move(x));
        } else {
            IValue x = unwrap(v, core);
            ::weft::share(x);
            pos.push_back(std::move(x));
        }
    }
}

std::int64_t deadline_for(const EngineCore& core, const CallOptions& o) {
    auto t = core.options.limits.timeout;
    if (o.limits && o.limits->timeout.count() > 0 && (t.count() == 0 || o.limits->timeout < t)) t = o.limits->timeout;
    if (t.count() <= 0) return INT64_MAX;
    return rt::now_ns() + std::int64_t(t.count()) * 1000000;
}

std::shared_ptr<const ::weft::CapabilitySet> call_caps(EngineCore& core, const CallOptions& o) {
    if (!o.capabilities) return core.caps;
    auto set = std::make_shared<::weft::CapabilitySet>();
    for (auto& f : o.capabilities->to_flags()) {
        std::string err;
        if (!::weft::parse_capability_flag(f, *set, err)) throw UsageError("CallOptions::capabilities: " + err);
    }
    std::string excess;
    if (!core.caps->covers(*set, excess))
        throw UsageError("CallOptions::capabilities may only narrow the Engine's: " + excess +
                         " is not granted to the Engine");
    set->own_sources = core.caps->own_sources;
    set->narrowed = true;
    return set;
}

// Runs one host call as a root task and turns its outcome into a Value or an exception.
struct CallPlan {
    std::shared_ptr<EngineCore> core;
    std::shared_ptr<CallRec> rec = std::make_shared<CallRec>();
    std::shared_ptr<const ::weft::CapabilitySet> caps;
    std::int64_t deadline = INT64_MAX;
    std::string name;
    std::string source;  // exec/eval: for compile errors
    std::shared_ptr<::weft::CallBudget> budget;  // max_steps / max_output, or null

    ::weft::Vm::ScopeHook hook() {
        // A raw pointer (the std::function keeps it inline, no allocation): the hook runs only
        // while the root task runs, and the plan holding `rec` outlives that (run_plan waits;
        // call_async's completion callback owns the plan).
        return [rec = rec.get()](rt::CancelScope* cs) {
            std::lock_guard<std::mutex> g(rec->mu);
            rec->scope = cs;
            if (cs && (rec->interrupted || rec->limited)) cs->cancel();  // before it started
        };
    }
    void enter() {
        std::lock_guard<std::mutex> g(core->calls_mu);
        if (core->closed.load()) throw EngineClosed();
        core->calls.insert(rec);
    }
    void leave() {
        std::lock_guard<std::mutex> g(core->calls_mu);
        core->calls.erase(rec);
        core->calls_cv.notify_all();
    }
    // The outcome: the value, or an exception_ptr (counted in EngineStats).
    std::exception_ptr outcome(::weft::Vm::RootResult& r, Value& out) {
        core->calls_total.fetch_add(1, std::memory_order_relaxed);
        std::exception_ptr e = outcome_of(r, out);
        if (e) core->calls_failed.fetch_add(1, std::memory_order_relaxed);
        return e;
    }
    std::exception_ptr outcome_of(::weft::Vm::RootResult& r, Value& out) {
        core->vm->flush_stdout();
        if (r.compile_error) {
            try {
                std::rethrow_exception(r.compile_error);
            } catch (const ::weft::CompileError& e) {
                return std::make_exception_ptr(compile_error(e, source));
            }
        }
        bool interrupted;
        {
            std::lock_guard<std::mutex> g(rec->mu);
            interrupted = rec->interrupted;
        }
        if (int which = budget ? budget->exceeded.load() : 0) {
            if (which == 4) return std::make_exception_ptr(Interrupted());  // on_slice said stop
            if (which == 1)
                return std::make_exception_ptr(LimitExceeded(Limit::Steps, "LimitExceeded: the call ran out of its step limit"));
            if (which == 3)
                return std::make_exception_ptr(LimitExceeded(
                    Limit::Memory, "LimitExceeded: the engine's scripts held more than the call's memory limit (" +
                                       std::to_string(budget->mem_limit) + " bytes)"));
            return std::make_exception_ptr(LimitExceeded(Limit::Output, "LimitExceeded: the call wrote more than its output limit"));
        }
        if (r.scope_cancelled && interrupted) return std::make_exception_ptr(Interrupted());
        if (r.scope_cancelled && deadline != INT64_MAX)
            return std::make_exception_ptr(
                LimitExceeded(Limit::Time, "LimitExceeded: the call ran out of its time limit"));
        if (!r.ok) return std::make_exception_ptr(script_error(r.value, core));
        out = wrap(r.value, core);
        return nullptr;
    }
};

CallPlan plan(Engine& e, const CallOptions& o, std::string default_name) {
    CallPlan p;
    p.core = e.core().shared_from_this();
    p.caps = call_caps(*p.core, o);
    p.deadline = deadline_for(*p.core, o);
    p.name = o.task_name.empty() ? p.core->options.name + ":" + default_name : o.task_name;
    auto narrowest = [](std::uint64_t a, std::uint64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); };
    const Limits& el = p.core->options.limits;
    std::uint64_t steps = narrowest(el.max_steps, o.limits ? o.limits->max_steps : 0);
    std::uint64_t output = narrowest(el.max_output, o.limits ? o.limits->max_output : 0);
    std::uint64_t memory = narrowest(el.max_memory, o.limits ? o.limits->max_memory : 0);
    // max_tasks and max_depth: the Engine's hold for every call (the Vm counts them); a call's
    // own, when narrower, is counted for that call's tasks (vm/limits.h TaskSlot,
    // Interp::narrow_depth).
    std::size_t call_tasks = o.limits ? o.limits->max_tasks : 0;
    if (call_tasks && el.max_tasks && call_tasks >= el.max_tasks) call_tasks = 0;
    std::size_t call_depth = o.limits ? o.limits->max_depth : 0;
    if (call_depth && el.max_depth && call_depth >= el.max_depth) call_depth = 0;
    if (steps || output || memory || call_tasks || call_depth || p.core->options.on_slice) {
        p.budget = std::make_shared<::weft::CallBudget>();
        if (steps) p.budget->steps_left.store(std::int64_t(std::min<std::uint64_t>(steps, INT64_MAX)));
        if (output) p.budget->output_left.store(std::int64_t(std::min<std::uint64_t>(output, INT64_MAX)));
        p.budget->max_tasks = call_tasks;
        p.budget->max_depth = call_depth;
        if (memory) {
            ::weft::mem_accounting_enable();
            p.budget->mem = p.core->mem.get();
            p.budget->mem_limit = std::int64_t(std::min<std::uint64_t>(memory, INT64_MAX));
        }
        p.budget->on_exceeded = [rec = p.rec] { rec->cancel_for_limit(); };
        if (p.core->options.on_slice) {
            // The Engine's options outlive the call (~Engine waits for it).
            p.budget->on_slice = [core = p.core.get(), start = std::chrono::steady_clock::now()](
                                     std::string_view task, std::uint64_t steps) {
                std::int64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - start).count();
                return core->options.on_slice(SliceInfo{core->options.name, task, steps, elapsed});
            };
        }
    }
    return p;
}

Value run_plan(CallPlan& p, const ::weft::Vm::RootBody& body) {
    p.enter();
    ::weft::Vm::RootResult r;
    try {
        r = p.core->vm->run_root(body, p.caps, p.deadline, p.hook(), p.name, p.budget.get());
    } catch (...) {
        p.leave();
        throw;
    }
    p.leave();
    Value out;
    if (auto e = p.outcome(r, out)) std::rethrow_exception(e);
    return out;
}

// The callable for call(): a Value, or a global of the main module by name.
IValue resolve_callable(::weft::Vm& vm, EngineCore* core, const Value* callable, std::string_view name) {
    if (callable) return unwrap(*callable, core);
    IValue fn;
    if (!vm.find_in_embed_main(std::string(name), fn)) {
        auto it = vm.builtin_index.find(std::string(name));
        if (it == vm.builtin_index.end())
            throw ::weft::WeftError(::weft::ErrorKind::NameError, "name '" + std::string(name) + "' is not defined");
        fn = vm.builtins[size_t(it->second)];
    }
    return fn;
}

// call()'s arguments converted for the interpreter, for a body that runs while they live.
struct SyncCallArgs {
    EngineCore* core;
    IValue fn;
    bool has_callable;
    std::string_view name;
    std::vector<IValue> pos;
    std::vector<std::string> kn;
    std::vector<IValue> kv;
    IValue operator()(::weft::Interp& in) const {
        IValue f = has_callable ? fn : resolve_callable(*core->vm, core, nullptr, name);
        if (kn.empty()) return in.call_kw(f, pos, {});
        std::vector<IKwArg> kws;
        for (size_t i = 0; i < kn.size(); ++i) kws.push_back(IKwArg{kn[i], kv[i]});
        return in.call_kw(f, pos, kws);
    }
};

// Converts a call's callable (or null: call by `a.name`) and packed arguments into `a`.
void prepare_call(SyncCallArgs& a, const Value* callable, std::vector<Value>& args) {
    a.has_callable = callable != nullptr;
    if (callable) a.fn = unwrap(*callable, a.core);
    a.pos.reserve(args.size());
    split_args(args, a.core, a.pos, a.kn, a.kv);
}

// The body of an asynchronous call, which outlives the caller's frame: it owns its arguments
// and the name it calls.
::weft::Vm::RootBody call_body(EngineCore* core, const Value* callable, std::string_view name,
                               std::vector<Value>& args) {
    struct Owned {
        std::string name;
        SyncCallArgs args;
    };
    auto o = std::make_shared<Owned>();
    o->name = std::string(name);
    o->args.core = core;
    o->args.name = o->name;
    prepare_call(o->args, callable, args);
    return [o](::weft::Interp& in) -> IValue { return o->args(in); };
}

}  // namespace

// ------------------------------------------------------------------------------------ futures

struct FutureCore {
    std::shared_ptr<EngineCore> core;
    std::shared_ptr<CallRec> rec;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Value value;
    std::exception_ptr error;
    std::vector<std::function<void(const Value*, std::exception_ptr)>> then;
};

bool future_ready(const FutureCore& f) {
    std::lock_guard<std::mutex> g(const_cast<FutureCore&>(f).mu);
    return f.done;
}

bool future_wait_for(const FutureCore& fc, std::chrono::nanoseconds d) {
    auto& f = const_cast<FutureCore&>(fc);
    std::unique_lock<std::mutex> g(f.mu);
    return f.cv.wait_for(g, d, [&] { return f.done; });
}

Value future_get(FutureCore& f) {
    require_host_thread("Future::get");
    std::unique_lock<std::mutex> g(f.mu);
    f.cv.wait(g, [&] { return f.done; });
    if (f.error) std::rethrow_exception(f.error);
    return f.value;
}

void future_cancel(FutureCore& f) {
    f.rec->cancel();
}

void future_then(FutureCore& f, std::function<void(const Value*, std::exception_ptr)> cb) {
    std::unique_lock<std::mutex> g(f.mu);
    if (!f.done) {
        f.then.push_back(std::move(cb));
        return;
    }
    g.unlock();
    cb(f.error ? nullptr : &f.value, f.error);
}

// ------------------------------------------------------------------------------------ completions

void completion_value(CompletionCore* c, Value v) {
    if (!c) throw UsageError("Completion used after it was moved from");
    std::lock_guard<std::mutex> g(c->mu);
    if (c->settled) throw UsageError("Completion of " + c->fn + "() resolved twice");
    c->settled = true;
    if (c->tx.cancelled()) return;  // the task gave up: the value is not needed
    IValue x = unwrap(v, c->core);
    ::weft::share(x);
    c->tx.set_value(std::move(x));  // false when the task gave up: dropped
}

void completion_error(CompletionCore* c, std::exception_ptr e) {
    if (!c) throw UsageError("Completion used after it was moved from");
    std::lock_guard<std::mutex> g(c->mu);
    if (c->settled) throw UsageError("Completion of " + c->fn + "() resolved twice");
    c->settled = true;
    // Mapped now (any thread: the table needs no Engine), raised where the task wakes.
    std::exception_ptr mapped;
    try {
        raise_in_weft(e, c->fn);
    } catch (...) {
        mapped = std::current_exception();
    }
    c->tx.set_error(mapped);
}

bool completion_cancelled(const CompletionCore* c) noexcept {
    return c && c->tx.cancelled();
}

void completion_on_cancel(CompletionCore* c, std::function<void()> f) {
    if (c) c->tx.on_cancel(std::move(f));
}

void completion_drop(CompletionCore* c) noexcept {
    (void)c;  // the sender's destructor (with the core's) breaks the wait: "dropped its completion"
}

// ------------------------------------------------------------------------------------ misc detail

void conversion_failed(const Value& v, const char* expected) {
    throw ConversionError(std::string("expected ") + expected + ", got " + v.type_name());
}

void bad_argument(std::size_t i, const ConversionError& e) {
    throw ConversionError("argument " + std::to_string(i + 1) + ": " + e.what());
}

void bad_arity(std::size_t expected, std::size_t got) {
    throw Raise("TypeError", "takes " + std::to_string(expected) + " argument" + (expected == 1 ? "" : "s") + " but " +
                                 std::to_string(got) + " were given");
}

Value make_host_object(std::shared_ptr<void> p, const std::type_info& type) {
    if (::weft::Vm* vm = ::weft::current_vm())  // on a worker: make it now
        if (EngineCore* core = engine_of(vm)) return wrap(make_host_obj(*core, std::move(p), type), core->shared_from_this());
    auto rep = std::make_shared<ValueRep>();
    rep->host_ptr = std::move(p);
    rep->host_type = &type;
    return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
}

std::shared_ptr<void> host_object_ptr(const Value& v, const std::type_info& type) {
    const auto& rep = v.rep();
    if (rep && rep->host_type) {
        if (*rep->host_type != type) conversion_failed(v, type.name());
        return rep->host_ptr;
    }
    if (!rep || !rep->v.is(::weft::ObjType::Opaque)) conversion_failed(v, "a host object");
    auto* o = rep->v.as<::weft::OpaqueObj>();
    if (o->cls->get_attr != host_obj_get_attr) conversion_failed(v, "a host object");
    auto* h = static_cast<HostObj*>(o);
    if (h->desc->type != std::type_index(type)) conversion_failed(v, type.name());
    return h->ptr;
}

Value call_function(const Value& f, std::vector<Value> args) {
    const auto& rep = f.rep();
    if (!rep || !rep->engine) throw UsageError("this value is not a function of an Engine");
    EngineCore& core = *rep->engine;
    if (core.closed.load() || !core.engine) throw EngineClosed();
    if (rt::current_task()) {  // a host function calling back: on this task
        auto* in = ::weft::current_interp();
        if (!in) throw UsageError("Function called on a runtime thread outside Weft code");
        std::vector<IValue> pos;
        for (auto& a : args) pos.push_back(unwrap(a, &core));
        return wrap(in->call(rep->v, pos), rep->engine);
    }
    return core.engine->call_impl(&f, {}, std::move(args), {});
}

TypeDesc* type_desc(Engine& e, std::string_view module, std::string_view name, const std::type_info& type) {
    EngineCore& core = e.core();
    auto d = std::make_unique<TypeDesc>();
    d->name = std::string(name);
    d->type = std::type_index(type);
    d->cls.name = d->name.c_str();
    d->cls.get_attr = host_obj_get_attr;
    d->cls.repr = host_obj_repr;
    TypeDesc* raw = d.get();
    {
        std::lock_guard<std::mutex> g(core.reg_mu);
        core.types[std::type_index(type)] = std::move(d);
    }
    // `Name(...)` constructs (TypeError until constructor<...>() is given).
    ModuleBuilder& mb = module.empty() ? e.globals() : e.module(module);
    mb.add_sync(name,
                [raw](Context& cx, Args& a) -> Value {
                    if (!raw->constructor) throw Raise("TypeError", "cannot create '" + raw->name + "' instances");
                    return raw->constructor(cx, a);
                },
                {});
    return raw;
}

void type_set_constructor(TypeDesc* d, SyncFn f) {
    d->constructor = std::move(f);
}
void type_add_method(TypeDesc* d, std::string_view name, SyncFn f) {
    d->methods[std::string(name)] = std::move(f);
}
void type_add_blocking_method(TypeDesc* d, std::string_view name, BlockingFn f) {
    d->blocking_methods[std::string(name)] = std::move(f);
}
void type_add_async_method(TypeDesc* d, std::string_view name, AsyncFn f) {
    d->async_methods[std::string(name)] = std::move(f);
}
void type_add_property(TypeDesc* d, std::string_view name, std::function<Value(const Value&)> get) {
    d->properties[std::string(name)] = std::move(get);
}
void type_set_repr(TypeDesc* d, std::function<std::string(const Value&)> f) {
    d->repr = std::move(f);
}
void type_set_serialized(TypeDesc* d) {
    d->serialized = true;
}

struct RuntimeImpl {
    std::shared_ptr<rt::Runtime> rt;
};

}  // namespace detail

using detail::EngineCore;
using detail::ValueRep;

// ------------------------------------------------------------------------------------ Version, errors

Version version() noexcept {
    return Version{WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH};
}

ScriptError::ScriptError(std::string what, std::vector<std::string> kinds, std::string message, std::string trace,
                         std::shared_ptr<const detail::ValueRep> value, std::vector<ScriptError> errors)
    : Exception(std::move(what)), kinds_(std::move(kinds)), message_(std::move(message)), trace_(std::move(trace)),
      value_(std::move(value)), errors_(std::move(errors)) {}

bool ScriptError::is(std::string_view kind) const noexcept {
    return std::find(kinds_.begin(), kinds_.end(), kind) != kinds_.end();
}

Value ScriptError::value() const {
    return Value(value_);
}

// ------------------------------------------------------------------------------------ Value

namespace {
// A Value made by the host (Value(42), Value("text"), list(...)): its internal object may be
// copied by several host threads at once, so its counts are made atomic now (share() does that
// once the process is in multi-threaded mode, which the embedding API always is).
Value plain(IValue v) {
    ::weft::g_multi_worker.store(true, std::memory_order_relaxed);
    ::weft::share(v);
    auto rep = detail::new_rep();
    rep->v = std::move(v);
    return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
}
const IValue& inner(const Value& v) {
    static const IValue none;
    const auto& rep = v.rep();
    return rep ? rep->v : none;
}
std::shared_ptr<EngineCore> engine_ref(const Value& v) {
    return v.rep() ? v.rep()->engine : nullptr;
}
// Runs a protocol function of the object library, turning its Weft errors into ConversionError.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (::weft::WeftError& e) {
        std::string msg = e.message;
        if (msg.empty() && e.error.is(::weft::ObjType::Struct) && e.error.as<::weft::StructObj>()->error)
            msg = e.error.as<::weft::StructObj>()->error->message;
        throw ConversionError(msg);
    }
}
}  // namespace

Value::Value(bool b) : Value(plain(IValue::boolean(b))) {}
Value::Value(double d) : Value(plain(IValue::number(d))) {}
Value::Value(std::string_view s) : Value(plain(::weft::make_str(s))) {}
Value Value::from_int(std::int64_t i) {
    return plain(IValue::integer(i));
}

Kind Value::kind() const noexcept {
    const IValue& v = inner(*this);
    if (rep_ && rep_->host_type && !v.is_obj()) return Kind::HostObject;
    if (v.is_none()) return Kind::None;
    if (v.is_bool()) return Kind::Bool;
    if (v.is_int()) return Kind::Int;
    if (v.is_float()) return Kind::Float;
    if (!v.is_obj()) return Kind::Other;
    using T = ::weft::ObjType;
    switch (v.as_obj()->type) {
        case T::Str: return Kind::Str;
        case T::Bytes: return Kind::Bytes;
        case T::List: return Kind::List;
        case T::Tuple: return Kind::Tuple;
        case T::Dict: return Kind::Dict;
        case T::Set: return Kind::Set;
        case T::Range: return Kind::Range;
        case T::Function:
        case T::Native:
        case T::BoundMethod: return Kind::Function;
        case T::StructType: return Kind::StructType;
        case T::Struct: return v.as<::weft::StructObj>()->error ? Kind::Error : Kind::Struct;
        case T::Module: return Kind::Module;
        case T::Promise: return Kind::Promise;
        case T::Opaque: {
            auto* o = v.as<::weft::OpaqueObj>();
            if (o->cls->get_attr == detail::host_obj_get_attr) return Kind::HostObject;
            if (o->cls->call_kw == detail::host_fn_call_kw) return Kind::Function;
            if (std::strcmp(o->cls->name, "channel") == 0) return Kind::Channel;
            return Kind::Other;
        }
        default: return Kind::Other;
    }
}

std::string Value::type_name() const {
    if (rep_ && rep_->host_type && !rep_->v.is_obj()) return "host object";
    return ::weft::type_name(inner(*this));
}

std::size_t Value::size() const {
    return guarded([&] { return std::size_t(::weft::length(inner(*this))); });
}

Value Value::operator[](std::size_t i) const {
    Kind k = kind();
    if (k != Kind::List && k != Kind::Tuple) detail::conversion_failed(*this, "list or tuple");
    return guarded([&] {
        return detail::wrap(::weft::get_item(inner(*this), IValue::integer(std::int64_t(i))), engine_ref(*this));
    });
}

Value Value::operator[](std::string_view key) const {
    const IValue& v = inner(*this);
    if (v.is(::weft::ObjType::Struct)) {
        auto* s = v.as<::weft::StructObj>();
        for (size_t i = 0; i < s->type->fields.size(); ++i)
            if (s->type->fields[i].name == key) return detail::wrap(s->fields[i], engine_ref(*this));
        throw ConversionError(std::string(type_name()) + " has no field '" + std::string(key) + "'");
    }
    if (!v.is(::weft::ObjType::Dict)) detail::conversion_failed(*this, "dict or struct");
    return guarded([&] { return detail::wrap(::weft::get_item(v, ::weft::make_str(key)), engine_ref(*this)); });
}

std::optional<Value> Value::get(const Value& key) const {
    const IValue& v = inner(*this);
    if (!v.is(::weft::ObjType::Dict)) detail::conversion_failed(*this, "dict");
    auto* d = v.as<::weft::DictObj>();
    IValue k = detail::unwrap(key, nullptr);
    int64_t at = guarded([&] { return d->table.find(k); });
    if (at < 0) return std::nullopt;
    return detail::wrap(d->table.entry(size_t(at)).value, engine_ref(*this));
}

bool Value::contains(const Value& key) const {
    return guarded([&] { return ::weft::contains(inner(*this), detail::unwrap(key, nullptr)); });
}

std::vector<Value> Value::elements() const {
    const IValue& v = inner(*this);
    std::vector<Value> out;
    auto e = engine_ref(*this);
    if (v.is(::weft::ObjType::List))
        for (auto& x : v.as<::weft::ListObj>()->items) out.push_back(detail::wrap(x, e));
    else if (v.is(::weft::ObjType::Tuple))
        for (auto& x : v.as<::weft::TupleObj>()->items) out.push_back(detail::wrap(x, e));
    else if (v.is(::weft::ObjType::Set)) {
        auto& t = v.as<::weft::SetObj>()->table;
        for (size_t i = 0; i < t.end_index(); ++i)
            if (t.entry(i).live) out.push_back(detail::wrap(t.entry(i).key, e));
    } else
        detail::conversion_failed(*this, "list, tuple or set");
    return out;
}

std::vector<std::pair<Value, Value>> Value::items() const {
    const IValue& v = inner(*this);
    std::vector<std::pair<Value, Value>> out;
    auto e = engine_ref(*this);
    if (v.is(::weft::ObjType::Dict)) {
        auto& t = v.as<::weft::DictObj>()->table;
        for (size_t i = 0; i < t.end_index(); ++i)
            if (t.entry(i).live) out.emplace_back(detail::wrap(t.entry(i).key, e), detail::wrap(t.entry(i).value, e));
    } else if (v.is(::weft::ObjType::Struct)) {
        auto* s = v.as<::weft::StructObj>();
        for (size_t i = 0; i < s->type->fields.size(); ++i)
            out.emplace_back(Value(s->type->fields[i].name), detail::wrap(s->fields[i], e));
    } else {
        detail::conversion_failed(*this, "dict or struct");
    }
    return out;
}

std::string_view Value::str_view() const {
    const IValue& v = inner(*this);
    if (!v.is(::weft::ObjType::Str)) detail::conversion_failed(*this, "str");
    return v.as<::weft::StrObj>()->data;
}

std::string_view Value::bytes_view() const {
    const IValue& v = inner(*this);
    if (!v.is(::weft::ObjType::Bytes)) detail::conversion_failed(*this, "bytes");
    return v.as<::weft::BytesObj>()->data;
}

std::string Value::str() const {
    return guarded([&] { return ::weft::to_str(inner(*this)); });
}
std::string Value::repr() const {
    return guarded([&] { return ::weft::repr(inner(*this)); });
}
bool Value::operator==(const Value& o) const {
    return guarded([&] { return ::weft::values_equal(inner(*this), inner(o)); });
}
std::size_t Value::hash() const {
    return guarded([&] { return std::size_t(::weft::value_hash(inner(*this))); });
}

bool Value::to_bool() const {
    const IValue& v = inner(*this);
    if (!v.is_bool()) detail::conversion_failed(*this, "bool");
    return v.as_bool();
}
std::int64_t Value::to_int() const {
    const IValue& v = inner(*this);
    if (!v.is_int()) detail::conversion_failed(*this, "int");
    return v.as_int();
}
double Value::to_double() const {
    const IValue& v = inner(*this);
    if (v.is_float()) return v.as_float();
    if (v.is_int()) return double(v.as_int());
    detail::conversion_failed(*this, "float");
}

namespace {
std::vector<const Value*> addresses(const std::vector<Value>& items) {
    std::vector<const Value*> out;
    for (const auto& x : items)
        if (x.rep() && x.rep()->records) out.push_back(&x);
    return out;
}
}  // namespace

Value list(std::vector<Value> items) {
    std::vector<IValue> v;
    std::shared_ptr<EngineCore> e;
    for (auto& x : items) {
        v.push_back(detail::unwrap(x, nullptr));
        if (!e) e = engine_ref(x);
    }
    return detail::with_marks(detail::wrap(::weft::make_list(std::move(v)), e), detail::merged_marks(addresses(items)));
}
Value tuple(std::vector<Value> items) {
    std::vector<IValue> v;
    std::shared_ptr<EngineCore> e;
    for (auto& x : items) {
        v.push_back(detail::unwrap(x, nullptr));
        if (!e) e = engine_ref(x);
    }
    return detail::with_marks(detail::wrap(::weft::make_tuple(std::move(v)), e), detail::merged_marks(addresses(items)));
}
Value dict(std::vector<std::pair<Value, Value>> items) {
    IValue d = ::weft::make_dict();
    std::shared_ptr<EngineCore> e;
    std::vector<const Value*> marked;
    for (auto& [k, x] : items) {
        guarded([&] {
            ::weft::set_item(d, detail::unwrap(k, nullptr), detail::unwrap(x, nullptr));
            return 0;
        });
        if (!e) e = engine_ref(x);
        if (x.rep() && x.rep()->records) marked.push_back(&x);
    }
    return detail::with_marks(detail::wrap(std::move(d), e), detail::merged_marks(marked));
}

Value detail::tag_record(Value dict, const std::type_info& t) {
    if (dict.kind() != Kind::Dict) return dict;
    auto marks = std::make_shared<detail::RecordMarks>();
    if (dict.rep()->records) *marks = *dict.rep()->records;
    marks->emplace_back(dict.rep()->v.as_obj(), &t);
    return detail::with_marks(std::move(dict), std::move(marks));
}

void Engine::def_struct_impl(std::string_view name, const std::type_info& t, const std::vector<std::string>& fields) {
    EngineCore& c = *core_;
    std::string n(name);
    auto valid = [](const std::string& s) {
        if (s.empty() || !(std::isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
        for (char ch : s)
            if (!(std::isalnum((unsigned char)ch) || ch == '_')) return false;
        return true;
    };
    if (!valid(n)) throw UsageError("Engine::def_struct: '" + n + "' is not a valid struct name");
    std::string src = "struct " + n + ":\n";
    for (const auto& f : fields) {
        if (!valid(f)) throw UsageError("Engine::def_struct<" + n + ">: field '" + f + "' is not a valid name");
        src += "    " + f + " = None\n";
    }
    if (fields.empty()) src += "    pass\n";
    IValue existing;
    if (c.vm->find_in_embed_main(n, existing)) {
        bool same = existing.is(::weft::ObjType::StructType) && existing.as<::weft::StructTypeObj>()->fields.size() == fields.size();
        for (std::size_t i = 0; same && i < fields.size(); ++i)
            same = existing.as<::weft::StructTypeObj>()->fields[i].name == fields[i];
        if (!same) throw UsageError("Engine::def_struct: '" + n + "' is already defined in the main module");
    } else {
        exec(src, "<def_struct " + n + ">");
    }
    IValue type;
    if (!c.vm->find_in_embed_main(n, type) || !type.is(::weft::ObjType::StructType))
        throw UsageError("Engine::def_struct: '" + n + "' could not be defined");
    std::lock_guard<std::mutex> g(c.reg_mu);
    c.record_structs[std::type_index(t)] = type;
}
Value set(std::vector<Value> items) {
    IValue s = ::weft::make_set();
    std::shared_ptr<EngineCore> e;
    for (auto& x : items) {
        guarded([&] { return ::weft::set_unshare(s)->table.insert(detail::unwrap(x, nullptr), IValue()); });
        if (!e) e = engine_ref(x);
    }
    return detail::wrap(std::move(s), e);
}
Value bytes(std::string_view data) {
    return plain(::weft::make_bytes(std::string(data)));
}

Function::Function(Value v) : Value(std::move(v)) {
    if (kind() != Kind::Function && kind() != Kind::StructType) detail::conversion_failed(*this, "a function");
}

// ------------------------------------------------------------------------------------ Runtime

Runtime::Runtime(RuntimeOptions o) : impl_(std::make_unique<detail::RuntimeImpl>()) {
    rt::RuntimeOptions ro;
    ro.workers = o.workers ? o.workers : std::max(1u, std::thread::hardware_concurrency());
    ro.stack_size = o.stack_size;
    ro.blocking_threads = o.blocking_threads;
    ro.time_slice = o.time_slice;
    ro.install_signal_handlers = o.install_signal_handlers;
    impl_->rt = std::make_shared<rt::Runtime>(ro);
}
Runtime::~Runtime() = default;
std::shared_ptr<Runtime> Runtime::create(RuntimeOptions o) {
    return std::shared_ptr<Runtime>(new Runtime(o));
}
unsigned Runtime::workers() const noexcept {
    return impl_->rt->workers();
}

// ------------------------------------------------------------------------------------ Capabilities

Capabilities Capabilities::all() {
    Capabilities c;
    c.flags_.push_back("--allow-all");
    return c;
}
Capabilities Capabilities::from_flags(std::span<const std::string> flags) {
    Capabilities c;
    ::weft::CapabilitySet probe;
    for (auto& f : flags) {
        std::string err;
        if (!::weft::parse_capability_flag(f, probe, err)) throw UsageError("capability flag '" + f + "': " + err);
        c.flags_.push_back(f);
    }
    return c;
}
namespace {
std::string flag(const char* kind, const std::string& v) {
    return std::string("--allow-") + kind + (v.empty() ? "" : "=" + v);
}
}  // namespace
Capabilities& Capabilities::allow_read(std::string p) {
    flags_.push_back(flag("read", p));
    return *this;
}
Capabilities& Capabilities::allow_write(std::string p) {
    flags_.push_back(flag("write", p));
    return *this;
}
Capabilities& Capabilities::allow_net(std::string h) {
    flags_.push_back(flag("net", h));
    return *this;
}
Capabilities& Capabilities::allow_run(std::string p) {
    flags_.push_back(flag("run", p));
    return *this;
}
Capabilities& Capabilities::allow_env(std::string n) {
    flags_.push_back(flag("env", n));
    return *this;
}

// ------------------------------------------------------------------------------------ Context

bool Context::cancelled() const {
    try {
        rt::check_cancelled();
    } catch (rt::Cancelled&) {
        return true;
    }
    return false;
}
void Context::checkpoint() {
    rt::checkpoint();  // Cancelled unwinds through the host function like any exception
}
Value Context::call_values(const Value& callable, std::vector<Value> args) {
    auto* in = static_cast<::weft::Interp*>(interp_);
    EngineCore* core = &engine_->core();
    std::vector<IValue> pos;
    for (auto& a : args) pos.push_back(detail::unwrap(a, core));
    return detail::wrap(in->call(detail::unwrap(callable, core), pos), core->shared_from_this());
}
std::string Context::task_id() const {
    rt::Task* t = rt::current_task();
    return t ? t->label() : std::string();
}
void Context::print(std::string_view text) {
    engine_->core().vm->write_stdout(text);
}
void Context::require_read(std::string_view path) const {
    ::weft::require_read(*static_cast<::weft::Interp*>(interp_), std::string(path));
}
void Context::require_write(std::string_view path) const {
    ::weft::require_write(*static_cast<::weft::Interp*>(interp_), std::string(path));
}
void Context::require_net(std::string_view host, int port) const {
    ::weft::require_net(*static_cast<::weft::Interp*>(interp_), std::string(host), port);
}
void Context::require_run(std::string_view program) const {
    ::weft::require_run(*static_cast<::weft::Interp*>(interp_), std::string(program));
}
void Context::require_env(std::string_view name) const {
    ::weft::require_env(*static_cast<::weft::Interp*>(interp_), std::string(name));
}

// ------------------------------------------------------------------------------------ InterruptHandle

bool InterruptHandle::interrupt() const {
    auto c = core_.lock();
    if (!c || c->closed.load()) return false;
    std::lock_guard<std::mutex> g(c->calls_mu);
    for (auto& r : c->calls) r->cancel();
    return true;
}

// ------------------------------------------------------------------------------------ modules

ModuleBuilder& ModuleBuilder::set(std::string_view name, Value v) {
    EngineCore& core = engine_->core();
    IValue x = detail::unwrap(v, &core);
    ::weft::share(x);
    if (module_.empty()) {
        core.vm->add_builtin(std::string(name), std::move(x));
    } else {
        std::lock_guard<std::mutex> g(core.reg_mu);
        core.module_defs[module_].emplace_back(std::string(name), std::move(x));
    }
    return *this;
}

namespace {
void add_fn(Engine* e, const std::string& module, std::string_view name, IValue f) {
    EngineCore& core = e->core();
    ::weft::share(f);
    if (module.empty()) {
        core.vm->add_builtin(std::string(name), std::move(f));
    } else {
        std::lock_guard<std::mutex> g(core.reg_mu);
        core.module_defs[module].emplace_back(std::string(name), std::move(f));
    }
}
}  // namespace

void ModuleBuilder::add_sync(std::string_view name, detail::SyncFn f, DefOptions o) {
    std::string full = module_.empty() ? std::string(name) : module_ + "." + std::string(name);
    add_fn(engine_, module_, name,
           detail::make_host_fn(&engine_->core(), full, detail::FnKind::Sync, std::move(f), nullptr, nullptr, o));
}
void ModuleBuilder::add_blocking(std::string_view name, detail::BlockingFn f, DefOptions o) {
    std::string full = module_.empty() ? std::string(name) : module_ + "." + std::string(name);
    add_fn(engine_, module_, name,
           detail::make_host_fn(&engine_->core(), full, detail::FnKind::Blocking, nullptr, std::move(f), nullptr, o));
}
void ModuleBuilder::add_async(std::string_view name, detail::AsyncFn f, DefOptions o) {
    std::string full = module_.empty() ? std::string(name) : module_ + "." + std::string(name);
    add_fn(engine_, module_, name,
           detail::make_host_fn(&engine_->core(), full, detail::FnKind::Async, nullptr, nullptr, std::move(f), o));
}

// ------------------------------------------------------------------------------------ Engine

Engine::Engine(EngineOptions options) : Engine(std::move(options), detail::ProgramSettings{}) {}

Engine::Engine(EngineOptions options, const detail::ProgramSettings& program)
    : core_(std::make_shared<EngineCore>()) {
    static std::once_flag stdlib_once;
    std::call_once(stdlib_once, [] { ::weft::register_stdlib(); });
    // Host threads touch values too: reference counts must be atomic whatever the worker count.
    // The command line's Engine only runs a program (no Value reaches the host): with one
    // worker its counts stay plain, as they always were for `weft --workers 1` (the Vm makes
    // them atomic itself when it starts more workers).
    bool command_line = !program.program.empty();
    if (!command_line) ::weft::g_multi_worker.store(true, std::memory_order_relaxed);
    EngineCore& c = *core_;
    c.options = std::move(options);
    c.engine = this;
    ::weft::VmOptions vo;
    vo.argv = c.options.args;
    vo.program = command_line ? program.program : c.options.name;
    vo.lisp = program.lisp;
    vo.trace = program.trace;
    vo.stats = program.stats;
    vo.install_signal_handlers = program.install_signal_handlers;
    vo.trace_hook = program.trace_hook;
    if (c.options.limits.max_depth) vo.max_depth = c.options.limits.max_depth;
    vo.workers = c.options.workers;
    vo.sequential = c.options.sequential;
    vo.default_timeout = c.options.default_timeout;
    vo.max_tasks = c.options.limits.max_tasks;
    vo.stdout_sink = c.options.stdout_sink;
    if (c.options.stderr_sink)
        vo.stderr_sink = [f = c.options.stderr_sink, mu = std::make_shared<std::mutex>()](std::string_view s) {
            std::lock_guard<std::mutex> g(*mu);  // one call at a time, as documented
            f(s);
        };
    if (c.options.load_module || !c.options.module_paths.empty()) {
        vo.load_module = [load = c.options.load_module, paths = c.options.module_paths](
                             std::string_view name, std::string_view importer) -> std::optional<std::string> {
            if (load)
                if (auto src = load(name, importer)) return src;
            // module_paths: plain names only ("util", "pkg.util" is not a path form here).
            if (name.find('/') != std::string_view::npos || name.find("..") != std::string_view::npos) return std::nullopt;
            for (const auto& dir : paths) {
                std::string file = dir + "/" + std::string(name);
                if (file.size() < 5 || file.compare(file.size() - 5, 5, ".weft") != 0) file += ".weft";
                std::ifstream f(file, std::ios::binary);
                if (!f) continue;
                std::ostringstream text;
                text << f.rdbuf();
                return text.str();
            }
            return std::nullopt;
        };
    }
    if (c.options.trace) {
        if (c.options.runtime)
            throw UsageError("EngineOptions::trace needs an Engine with its own runtime (not EngineOptions::runtime)");
        static_assert(int(rt::TraceKind::Created) == int(TraceEvent::Kind::Created) &&
                      int(rt::TraceKind::Done) == int(TraceEvent::Kind::Done));
        vo.trace_hook = [f = c.options.trace, then = std::move(vo.trace_hook)](const rt::TraceEvent& ev) {
            TraceEvent out{TraceEvent::Kind(ev.kind), ev.task_id, ev.worker, ev.time_ns,
                           ev.what ? std::string_view(ev.what) : std::string_view()};
            f(out);
            if (then) then(ev);
        };
    }
    if (c.options.runtime) vo.shared_runtime = c.options.runtime->impl().rt;
    for (auto& f : c.options.capabilities.to_flags()) {
        std::string err;
        if (!::weft::parse_capability_flag(f, vo.caps, err)) throw UsageError("capability flag '" + f + "': " + err);
    }
    {
        // Building a Vm sets a few process-wide things once (the runtime's embedder hooks, the
        // memory handlers, the standard modules' registry): Engines are created one at a time.
        static std::mutex create_mu;
        std::lock_guard<std::mutex> g(create_mu);
        c.vm = std::make_unique<::weft::Vm>(std::move(vo));
        ::weft::register_stdlib_builtins(*c.vm);
    }
    c.caps = c.vm->program_capabilities();
    {
        std::lock_guard<std::mutex> g(detail::g_engines_mu);
        detail::g_engines[c.vm.get()] = &c;
    }
    // Starts the workers now, not in the middle of the first call. Not for the command line:
    // its first root task is the program's (what --trace and --stats show).
    if (!command_line) c.vm->runtime();
    c.globals = std::make_unique<ModuleBuilder>(this, "");
}

Engine::~Engine() {
    EngineCore& c = *core_;
    {
        std::unique_lock<std::mutex> g(c.calls_mu);
        c.closed.store(true);
        for (auto& r : c.calls) r->cancel();
        // Calls end once their `finally` blocks ran. One still running after the grace (a host
        // function that does not return, a shielded cleanup) is waited for all the same — its
        // code may use what the host destroys after ~Engine — but not silently.
        auto ended = [&] { return c.calls.empty() && c.blocking_jobs == 0; };
        if (!c.calls_cv.wait_for(g, c.options.shutdown_grace, ended)) {
            std::string msg = "weft: engine '" + c.options.name + "': still running " +
                              std::to_string(c.options.shutdown_grace.count()) +
                              " ms after ~Engine interrupted its calls (EngineOptions::shutdown_grace): " +
                              std::to_string(c.calls.size()) + " call(s), " + std::to_string(c.blocking_jobs) +
                              " blocking host function(s); waiting for them\n";
            c.vm->write_diagnostic(msg);  // the stderr sink, or standard error
            c.calls_cv.wait(g, ended);
        }
    }
    c.engine = nullptr;
    {
        std::lock_guard<std::mutex> g(detail::g_engines_mu);
        detail::g_engines.erase(c.vm.get());
    }
    // The Vm (and its runtime) go with the core: now, unless a Value still holds it.
}

ModuleBuilder& Engine::globals() {
    return *core_->globals;
}

ModuleBuilder& Engine::module(std::string_view name) {
    EngineCore& c = *core_;
    {
        std::lock_guard<std::mutex> g(c.reg_mu);
        auto it = c.modules.find(name);
        if (it != c.modules.end()) return *it->second;
    }
    // Registered with the Vm outside reg_mu: an import takes the Vm's module lock, then reg_mu.
    std::string key(name);
    EngineCore* core = &c;
    c.vm->add_host_module(key, [core, key](::weft::ModuleObj& m) {
        std::lock_guard<std::mutex> g(core->reg_mu);
        for (auto& [k, v] : core->module_defs[key]) m.define(k, v);
    });
    std::lock_guard<std::mutex> g(c.reg_mu);
    if (auto it = c.modules.find(name); it != c.modules.end()) return *it->second;
    std::string n(name);
    auto mb = std::make_unique<ModuleBuilder>(this, n);
    ModuleBuilder& ref = *mb;
    c.modules.emplace(n, std::move(mb));
    return ref;
}

Value Engine::keyword(KwArg k) {
    auto rep = std::make_shared<ValueRep>();
    if (k.value.rep()) *rep = *k.value.rep();
    rep->keyword = std::move(k.name);
    rep->is_keyword = true;
    return Value(std::shared_ptr<const ValueRep>(std::move(rep)));
}

Value Engine::call_impl(const Value* callable, std::string_view name, std::vector<Value> args, const CallOptions& o) {
    detail::require_host_thread("Engine::call");
    detail::CallPlan p = detail::plan(*this, o, callable ? "call" : std::string(name));
    // The call waits for its body: the arguments stay here and the body refers to them (a
    // lambda holding one pointer is stored inside the std::function, no allocation).
    detail::SyncCallArgs a{core_.get(), {}, false, name, {}, {}, {}};
    detail::prepare_call(a, callable, args);
    const detail::SyncCallArgs* ap = &a;
    return detail::run_plan(p, [ap](::weft::Interp& in) { return (*ap)(in); });
}

std::shared_ptr<detail::FutureCore> Engine::call_async_impl(const Value* callable, std::string_view name,
                                                            std::vector<Value> args, const CallOptions& o) {
    detail::CallPlan p = detail::plan(*this, o, callable ? "call" : std::string(name));
    auto body = detail::call_body(core_.get(), callable, name, args);
    auto fut = std::make_shared<detail::FutureCore>();
    fut->core = p.core;
    fut->rec = p.rec;
    p.enter();
    auto plan = std::make_shared<detail::CallPlan>(std::move(p));
    try {
        (void)core_->vm->start_root(
            std::move(body), plan->caps, plan->deadline, plan->hook(), plan->name,
            [plan, fut](::weft::Vm::RootResult& r) mutable {
                // Every reference to the Engine this callback holds is dropped before leave()
                // lets ~Engine go on: the Vm must never be destroyed on one of its own workers.
                auto pl = std::move(plan);
                auto f = std::move(fut);
                {
                    Value v;
                    std::exception_ptr e = pl->outcome(r, v);
                    std::vector<std::function<void(const Value*, std::exception_ptr)>> then;
                    {
                        std::lock_guard<std::mutex> g(f->mu);
                        f->value = v;
                        f->error = e;
                        f->done = true;
                        then.swap(f->then);
                    }
                    f->cv.notify_all();
                    for (auto& cb : then) {
                        try {
                            cb(e ? nullptr : &v, e);
                        } catch (...) {  // a callback's own failure must not kill the worker
                        }
                    }
                }
                r.value = IValue();
                f.reset();
                std::shared_ptr<detail::CallRec> rec = pl->rec;
                std::shared_ptr<EngineCore> core = std::move(pl->core);
                pl.reset();
                EngineCore* raw = core.get();
                core.reset();  // the Engine (waiting in ~Engine for this call) still holds it
                std::lock_guard<std::mutex> g(raw->calls_mu);
                raw->calls.erase(rec);
                raw->calls_cv.notify_all();
            },
            plan->budget.get());
    } catch (...) {
        plan->leave();
        throw;
    }
    return fut;
}

void Engine::run_file(const std::string& path, const CallOptions& o) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw UsageError("cannot open '" + path + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    exec(ss.str(), path, o);
}

namespace {
// run_program's body, once per Engine, with EngineCore::program_running set while it runs
// (Engine::interrupt).
template <class F>
int run_main_program(detail::EngineCore& core, const char* what, F&& run) {
    detail::require_host_thread(what);
    if (core.program_started.exchange(true)) throw UsageError("Engine::run_program: this Engine already ran a program");
    struct Running {
        detail::EngineCore& c;
        explicit Running(detail::EngineCore& core) : c(core) { c.program_running.store(true); }
        ~Running() { c.program_running.store(false); }
    } running(core);
    return run();
}
}  // namespace

int Engine::run_program(const std::string& path) {
    return run_main_program(*core_, "Engine::run_program", [&] { return core_->vm->run_file(path); });
}

int Engine::run_program_source(std::string_view source, std::string_view name) {
    return run_main_program(*core_, "Engine::run_program_source", [&] { return core_->vm->run_source(std::string(source), std::string(name)); });
}

::weft::Vm& detail::engine_vm(Engine& e) {
    return *e.core().vm;
}

Value Engine::exec(std::string_view source, std::string_view name, const CallOptions& o) {
    detail::require_host_thread("Engine::exec");
    detail::CallPlan p = detail::plan(*this, o, "exec");
    p.source = std::string(source);
    EngineCore* core = core_.get();
    std::string src(source), nm(name);
    return detail::run_plan(p, [core, src, nm](::weft::Interp& in) { return core->vm->run_in_main(in, src, nm); });
}

void Engine::check(std::string_view source, std::string_view name) {
    std::string src(source), nm(name);
    try {
        auto ast = ::weft::parse_module(src, nm);
        ::weft::GlobalLayout layout = core_->vm->embed_main_layout();
        ::weft::CompileOptions co;
        co.repl = true;
        co.builtins = &core_->vm->builtin_index;
        (void)::weft::compile_module(*ast, layout, co);
    } catch (const ::weft::CompileError& e) {
        ::weft::CompileError copy = e;
        if (copy.diag.path.empty()) copy.diag.path = nm;
        throw detail::compile_error(copy, src);
    }
}

Value Engine::global(std::string_view name) const {
    IValue v;
    if (!core_->vm->find_in_embed_main(std::string(name), v)) return Value();
    return detail::wrap(v, core_);
}

Value Engine::global(std::string_view name, std::string_view module) const {
    if (module == "__main__") return global(name);
    IValue v;
    int found = core_->vm->find_in_module(std::string(module), std::string(name), v);
    if (found < 0) throw UsageError("Engine::global: no script of this Engine imported module '" + std::string(module) + "'");
    return found ? detail::wrap(v, core_) : Value();
}

const Capabilities& Engine::capabilities() const noexcept {
    return core_->options.capabilities;
}

void Engine::set_global(std::string_view name, Value v) {
    IValue x = detail::unwrap(v, core_.get());
    ::weft::share(x);
    ::weft::ModuleObj* m = core_->vm->embed_main_module();
    // Compiled code finds the name through the layout (REPL-style compiles read it).
    m->define(std::string(name), std::move(x));
}

void Engine::interrupt() {
    {
        std::lock_guard<std::mutex> g(core_->calls_mu);
        for (auto& r : core_->calls) r->cancel();
    }
    // A running program stops as on Ctrl-C (KeyboardInterrupt in its main task; status 130).
    // Its main task may not exist yet (the program still compiles): then a thread delivers the
    // interrupt as soon as it does, as the command line's signal watcher does (cli/signals.cpp).
    // A task is cancelled from outside, never by itself while it starts.
    if (core_->program_running.load()) {
        core_->vm->stop_signal.store(SIGINT, std::memory_order_release);
        if (!core_->vm->interrupt_main())
            std::thread([core = core_] {
                while (core->program_running.load() && !core->vm->interrupt_main())
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }).detach();
    }
}

InterruptHandle Engine::interrupt_handle() {
    return InterruptHandle(core_);
}

EngineStats Engine::stats() const {
    EngineStats s;
    {
        std::lock_guard<std::mutex> g(core_->calls_mu);
        s.calls_running = core_->calls.size();
    }
    s.live_tasks = ::weft::limits::live_tasks(core_->vm->limits_state());
    s.memory_bytes = std::size_t(std::max<std::int64_t>(0, core_->mem->total()));
    s.memory_peak = std::size_t(std::max<std::int64_t>(0, core_->mem->peak.load(std::memory_order_relaxed)));
    s.calls_total = core_->calls_total.load(std::memory_order_relaxed);
    s.calls_failed = core_->calls_failed.load(std::memory_order_relaxed);
    s.program_running = core_->program_running.load();
    return s;
}

const std::string& Engine::name() const noexcept {
    return core_->options.name;
}

}  // namespace weft::api
