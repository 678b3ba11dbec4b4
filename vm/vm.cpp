// vm.cpp — program-wide VM state: builtins, the built-in error types, module
// loading (standard modules and relative file imports, each run once), running
// a program and reporting compile errors and uncaught errors.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "compiler/lisp/lower.h"
#include "compiler/parser.h"
#include "vm/actors.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/lisp_prims.h"
#include "vm/limits.h"
#include "vm/memory.h"
#include "vm/pending.h"
#include "vm/run_stats.h"
#include "vm/sys.h"
#include "vm/task_context.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

// The Vm a host thread is inside (VmScope), for code that runs outside any task.
thread_local Vm* t_host_vm = nullptr;

std::unordered_map<std::string, NativeModuleInit>& native_registry() {
    static std::unordered_map<std::string, NativeModuleInit> r;
    return r;
}

const OpaqueClass kUndefinedClass{"undefined"};
struct UndefinedObj : OpaqueObj {
    UndefinedObj() : OpaqueObj(&kUndefinedClass) { flags = kImmortal; }
};
UndefinedObj* undefined_singleton() {
    static UndefinedObj* u = new UndefinedObj();
    return u;
}

const char* kErrorNames[] = {
    "Error", "ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError", "OverflowError",
    "AttributeError", "NameError", "RecursionError", "MemoryError", "AssertionError", "TimeoutError", "ChannelClosed",
    "PermissionDenied", "IOError", "NetworkError", "ProcessError", "ActorStopped", "Deadlock", "ErrorGroup",
    "PartialFailure", "Cancelled", "SystemExit", "KeyboardInterrupt", "DatabaseError", "MailboxFull", "CircuitOpen",
    "ClusterError", "WorkerLost",
};

// False (errno set) when `path` cannot be read; a directory is refused with EISDIR (an
// ifstream opens one and reads nothing, which ran it as an empty program).


Value bi_error(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "error() takes exactly one argument (the message)");
    return make_error(ErrorKind::Error, to_str(a.pos[0]));
}

// set_recursion_limit(n): the call depth before RecursionError, from now on (Python's
// sys.setrecursionlimit). The calling task takes it at once, other tasks when they next start.
// The value stack also bounds the depth (a task's holds about a million registers).
constexpr int64_t kMaxRecursionLimit = 100000000;
Value bi_set_recursion_limit(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.kw.empty())
        throw WeftError(ErrorKind::TypeError, "set_recursion_limit() takes exactly one argument (the limit)");
    const Value& n = a.pos[0];
    if (!n.is_int() || n.is_bool())
        throw WeftError(ErrorKind::TypeError, "set_recursion_limit() argument must be int, not " + type_name(n));
    if (n.as_int() < 1 || n.as_int() > kMaxRecursionLimit)
        throw WeftError(ErrorKind::ValueError, "set_recursion_limit(): the limit must be between 1 and " +
                                                   std::to_string(kMaxRecursionLimit));
    auto& in = static_cast<Interp&>(cx);
    in.vm().set_recursion_limit(size_t(n.as_int()));
    in.refresh_recursion_limit();
    return Value();
}

Value bi_is_error(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "is_error() takes exactly one argument");
    const Value& v = a.pos[0];
    return Value::boolean(v.is(ObjType::Struct) && v.as<StructObj>()->error != nullptr);
}

// __assert_message__(left, right, op): the message of a failed `assert left op right` (the
// compiler calls it; see the Assert case of compiler/codegen.cpp). Long values are cut.
Value bi_assert_message(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 3) throw WeftError(ErrorKind::TypeError, "__assert_message__() takes 3 arguments");
    auto shown = [](const Value& v) {
        std::string s = repr(v);
        if (s.size() > 240) {
            size_t cut = 200;
            while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
            s = s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
        }
        return s;
    };
    return make_str("assert " + shown(a.pos[0]) + " " + to_str(a.pos[2]) + " " + shown(a.pos[1]));
}

Value bi_repl_print(CallContext& cx, const CallArgs& a) {
    if (TaskContext* c = current_task_context(); c && c->echo) {  // embedded exec/eval
        *c->echo = a.pos.empty() ? Value() : a.pos[0];
        return Value();
    }
    if (!a.pos.empty() && !a.pos[0].is_none()) cx.write_stdout(repr(a.pos[0]) + "\n");
    return Value();
}

// __introspect__(what, x): a hidden listing for tests, so that tests/lang/errors/
// kwargs_everywhere.weft calls every builtin, module function and method (with a keyword none of
// them takes) and one added later is covered without editing the test.
//   "builtins"        {name: value} of the builtins
//   "native_modules"  the importable native modules' names, sorted
//   "import", name    the native module `name`, imported
//   "members", x      {name: value} of a module's attributes, or of a value's built-in methods
//                     (bound to it)
Value bi_introspect(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty() || !a.pos[0].is(ObjType::Str))
        throw WeftError(ErrorKind::TypeError, "__introspect__() takes a str naming what to list");
    auto* in = dynamic_cast<Interp*>(&cx);
    if (!in) throw WeftError(ErrorKind::TypeError, "__introspect__() needs the interpreter");
    const std::string& what = a.pos[0].as<StrObj>()->data;
    if (what == "builtins" && a.pos.size() == 1) {
        Value d = make_dict();
        for (auto& [n, i] : in->vm().builtin_index) set_item(d, make_str(n), in->vm().builtins[size_t(i)]);
        return d;
    }
    if (what == "native_modules" && a.pos.size() == 1) {
        std::vector<std::string> names;
        for (auto& [n, init] : native_registry()) names.push_back(n);
        std::sort(names.begin(), names.end());
        std::vector<Value> out;
        for (auto& n : names) out.push_back(make_str(n));
        return make_list(std::move(out));
    }
    if (what == "import" && a.pos.size() == 2 && a.pos[1].is(ObjType::Str) &&
        native_registry().count(a.pos[1].as<StrObj>()->data))
        return Value::borrow(in->vm().import_module(*in, a.pos[1].as<StrObj>()->data, nullptr));
    if (what == "members" && a.pos.size() == 2) {
        Value d = make_dict();
        const Value& x = a.pos[1];
        if (x.is(ObjType::Module)) {
            auto* m = x.as<ModuleObj>();
            for (auto& [n, slot] : m->layout.slots)
                if (Value v; m->find(n, v)) set_item(d, make_str(n), v);
        } else {
            for (auto& n : method_names(x)) set_item(d, make_str(n), in->attribute(x, intern(n)));
        }
        return d;
    }
    throw WeftError(ErrorKind::ValueError, "__introspect__(): unknown request '" + what + "'");
}


}  // namespace

Obj* const ModuleObj::undefined_obj = undefined_singleton();

bool read_source_file(const std::string& path, std::string& out) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return false;
    }
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}
Value ModuleObj::undefined_marker() { return Value::borrow(undefined_obj); }

const char* error_kind_name(ErrorKind k) {
    return size_t(k) < size_t(ErrorKind::Count) ? kErrorNames[size_t(k)] : "Error";
}

Vm* current_vm() noexcept {
    if (Interp* in = current_interp()) return &in->vm();
    if (t_host_vm) return t_host_vm;
    return static_cast<Vm*>(rt::current_embedder_data());
}

VmScope::VmScope(Vm* vm) noexcept : prev_(t_host_vm) { t_host_vm = vm; }
VmScope::~VmScope() { t_host_vm = prev_; }

void Vm::set_extension_value(const std::string& key, Value v) {
    share(v);  // read by tasks on every worker
    std::lock_guard<std::mutex> g(ext_mu_);
    ext_values_[key] = std::move(v);
}

Value Vm::extension_value(const std::string& key) {
    std::lock_guard<std::mutex> g(ext_mu_);
    auto it = ext_values_.find(key);
    return it == ext_values_.end() ? Value() : it->second;
}

Value make_error(ErrorKind kind, std::string msg) {
    Vm* vm = current_vm();
    if (!vm) {
        // No VM (unit tests of the object library): a bare error struct.
        static StructTypeObj* t = [] {
            auto* t = new StructTypeObj();
            t->name = "Error";
            t->is_error = true;
            t->flags = Obj::kImmortal;
            return t;
        }();
        auto* s = new StructObj(t);
        if (!s->error) s->error = new ErrorData();
        s->error->message = std::move(msg);
        return Value::adopt(s);
    }
    return vm->make_error(kind, std::move(msg));
}

void Vm::register_native_module(const std::string& name, NativeModuleInit init) { native_registry()[name] = init; }

Vm::Vm(VmOptions options)
    : options_(std::move(options)), sources_(std::make_shared<SourceFiles>()),
      limits_(std::make_unique<limits::State>()) {
    install_memory_handlers();  // MemoryError, not a silent abort (vm/memory.h)
    recursion_limit_.store(options_.max_depth, std::memory_order_relaxed);
    options_.caps.own_sources = sources_;
    sources_->set_root(".");  // -e, the REPL, stdin; run_file sets the main file's folder
    program_caps_ = std::make_shared<const CapabilitySet>(options_.caps);
    VmScope scope(this);  // builtins and modules made here raise this Vm's errors
    out_line_buffered_ = isatty(1) || options_.trace;
    init_error_types();
    init_builtins();
    main_ = std::make_unique<Interp>(*this);
    // `sys` needs the program's arguments, so it is built here rather than by a module init.
    auto* sys = new ModuleObj();
    sys->name = "sys";
    sys->imported = true;
    init_sys_module(*sys, options_.program, options_.argv);
    share_all(sys->globals);
    sys->initialized = true;
    modules_["sys"] = sys;
}

Vm::~Vm() {
    flush_stdout();
    if (stats_ && runtime_) {
        stats_->print(stderr, runtime_->counters(), runtime_->workers());
        ActorStats a = actor_stats(*this);
        if (a.spawned)
            fprintf(stderr,
                    "actors:  %llu spawned, %llu messages handled, %llu dead letters (%llu dropped by full "
                    "mailboxes), %llu restarts, peak mailbox %zu\n",
                    (unsigned long long)a.spawned, (unsigned long long)a.messages,
                    (unsigned long long)a.dead_letters, (unsigned long long)a.dropped,
                    (unsigned long long)a.restarts, a.peak_mailbox);
    }
    pool_.clear();
    runtime_.reset();
    main_.reset();
    destroy_actor_system(actor_system);
    actor_system = nullptr;
    ext_values_.clear();  // before the modules whose values they are
    // Modules, builtins and error types are immortal while the program runs
    // (shared by every task without count traffic); the VM frees them here, in
    // dependency order, so leak checkers see a clean exit.
    std::vector<ModuleObj*> mods;
    for (auto& [key, m] : modules_) mods.push_back(m);
    if (repl_module_) mods.push_back(repl_module_);
    if (embed_main_) mods.push_back(embed_main_);
    std::sort(mods.begin(), mods.end());
    mods.erase(std::unique(mods.begin(), mods.end()), mods.end());
    // A module's globals may hold another module (`import sys`; releasing an immortal reads
    // its flags): every module's values go before any module is freed.
    for (ModuleObj* m : mods) {
        m->globals.clear();
        m->limbo.clear();
    }
    for (ModuleObj* m : mods) delete m;
    modules_.clear();
    for (Value& v : builtins) {
        if (v.is(ObjType::Native) && (v.as_obj()->flags & Obj::kImmortal)) delete v.release_obj();
    }
    builtins.clear();
    // Subtypes before their bases (a type's destructor releases its base).
    for (size_t k = size_t(ErrorKind::Count); k-- > 0;) {
        delete error_types_[k];
        error_types_[k] = nullptr;
    }
}

void Vm::init_error_types() {
    for (size_t k = 0; k < size_t(ErrorKind::Count); ++k) {
        auto* t = new StructTypeObj();
        t->name = kErrorNames[k];
        t->is_error = true;
        t->builtin_error = int(k);
        t->flags = Obj::kImmortal;
        ErrorKind kind = ErrorKind(k);
        if (kind == ErrorKind::Cancelled || kind == ErrorKind::SystemExit || kind == ErrorKind::KeyboardInterrupt) {
            t->base = nullptr;  // not an Error: `except Error` does not catch it
        } else if (kind == ErrorKind::PartialFailure) {
            t->base = error_types_[size_t(ErrorKind::ErrorGroup)];
        } else if (kind == ErrorKind::TimeoutError) {
            t->base = error_types_[0];
        } else if (kind == ErrorKind::DatabaseError) {
            t->base = error_types_[size_t(ErrorKind::IOError)];
        } else if (kind == ErrorKind::WorkerLost) {
            t->base = error_types_[size_t(ErrorKind::ClusterError)];
        } else if (k > 0) {
            t->base = error_types_[0];
        }
        error_types_[k] = t;
    }
}

Value Vm::make_error(ErrorKind k, std::string message) {
    auto* s = new StructObj(error_types_[size_t(k)]);
    if (!s->error) s->error = new ErrorData();
    s->error->message = std::move(message);
    return Value::adopt(s);
}

void Vm::add_builtin(const std::string& name, Value v) {
    auto it = builtin_index.find(name);
    if (it != builtin_index.end()) {
        // A later registration replaces an earlier one (the runtime's sleep and
        // monotonic replace the sequential ones); immortal natives are freed here.
        Value& old = builtins[it->second];
        if (old.is(ObjType::Native) && (old.as_obj()->flags & Obj::kImmortal)) delete old.release_obj();
        builtins[it->second] = std::move(v);
        return;
    }
    builtin_index[name] = int(builtins.size());
    builtins.push_back(std::move(v));
}

void Vm::init_builtins() {
    std::vector<std::pair<std::string, Value>> core;
    register_core_builtins(core);
    for (auto& [n, v] : core) {
        if (v.is(ObjType::Native) && n != "input") v.as<NativeObj>()->computes = true;
        add_builtin(n, std::move(v));
    }
    for (size_t k = 0; k < size_t(ErrorKind::Count); ++k) add_builtin(kErrorNames[k], Value::borrow(error_types_[k]));
    auto native = [&](const char* n, NativeFn f) {
        auto* nf = new NativeObj(n, f);
        nf->computes = true;  // these three only compute
        add_builtin(n, Value::adopt(nf));
    };
    native("error", bi_error);
    native("is_error", bi_is_error);
    native("set_recursion_limit", bi_set_recursion_limit);
    native("__repl_print__", bi_repl_print);
    native("__assert_message__", bi_assert_message);
    native("__introspect__", bi_introspect);
    for (const char* n : {"exit", "quit"}) {
        auto* nf = new NativeObj(n, bi_exit);
        set_native_kwargs(nf, "code");
        add_builtin(n, Value::adopt(nf));
    }
    register_concurrency_builtins(*this);
    register_lisp_builtins(*this);
    register_actor_builtins(*this);
    std::vector<Value> argv;
    for (auto& a : options_.argv) argv.push_back(make_str(a));
    add_builtin("args", make_list(std::move(argv)));
}

bool Vm::interrupt_main() {
    std::lock_guard<std::mutex> g(main_task_mu_);
    if (!main_task_) return false;
    interrupted_ = true;
    main_task_->cancel();
    return true;
}

void Vm::write_stdout(std::string_view s) {
    // An embedding host's output limit (weft::Limits::max_output): past it nothing more is
    // written and the call is cancelled.
    if (TaskContext* c = current_task_context(); c && c->budget) {
        if (c->budget->output_left.fetch_sub(std::int64_t(s.size()), std::memory_order_relaxed) <
            std::int64_t(s.size())) {
            c->budget->exceed(2);
            rt::check_cancelled();
            return;
        }
    }
    std::lock_guard<std::mutex> g(out_mu_);
    out_buf_.append(s);
    if (out_buf_.size() > (1 << 16) || (out_line_buffered_ && s.find('\n') != std::string_view::npos))
        flush_stdout_locked();
}

void Vm::flush_stdout() {
    std::lock_guard<std::mutex> g(out_mu_);
    flush_stdout_locked();
}

void Vm::flush_stdout_locked() {
    if (options_.stdout_sink) {  // an embedding host's
        if (!out_buf_.empty()) options_.stdout_sink(out_buf_);
        out_buf_.clear();
        return;
    }
    if (!out_buf_.empty()) {
        fwrite(out_buf_.data(), 1, out_buf_.size(), stdout);
        out_buf_.clear();
    }
    fflush(stdout);
}

// ---------------------------------------------------------------------------
// Tasks: the runtime and the interpreter pool

void Vm::in_runtime(const std::function<void()>& fn) {
    if (rt::current_task()) {  // already inside the program's runtime (nested run)
        fn();
        return;
    }
    start_runtime();
    run_main_root(fn);
}

void Vm::start_runtime() {
    if (!runtime_ && options_.shared_runtime) {
        runtime_ = options_.shared_runtime;  // an embedding host's, shared by several Vms
        g_multi_worker.store(true, std::memory_order_relaxed);
        share_all(builtins);
    }
    if (!runtime_) {
        rt::RuntimeOptions o;
        o.workers = options_.workers ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
        o.install_signal_handlers = options_.install_signal_handlers;
        // Monotonic: once any program of the process runs on several workers, values share
        // with atomic counts (always correct; only slower for a single-worker Vm beside it).
        if (o.workers > 1) g_multi_worker.store(true, std::memory_order_relaxed);
        o.embedder_data = this;
        share_all(builtins);  // every task reads them
        // The Deadlock report names the line each task waits at (its interpreter's innermost
        // frame; every task is parked when this runs).
        o.wait_site = [this](rt::Task* t) -> std::string {
            auto* c = static_cast<const TaskContext*>(t->user_data());
            std::string site = c && c->interp ? format_site(c->interp->current_site()) : std::string();
            // An actor's task says which actor it is and what message it handles.
            std::string note = actor_task_note(*this, t);
            if (note.empty()) return site;
            return site.empty() ? note : site + " (" + note + ")";
        };
        if (options_.trace) {
            auto start = rt::now_ns();
            // One line per event, as in the language reference (section 13):
            //   [task fetch_user#3] created at app.weft:12 in main
            //   [task fetch_user#3] started (deferred) at app.weft:12 in main
            //   [task fetch_user#3] blocked on sleep / resumed
            //   [task fetch_user#3] done 41.2ms
            // each followed by the worker and the time since the run began. A task's label,
            // kind and spawn site are learned when it is created (the VM notes the name and kind
            // around its spawns, t_spawn_note; the runtime reports the creation from inside the
            // spawn, on the spawning task) or else when it starts (the hook then runs on it).
            struct Info {
                std::string label, kind, site;
                std::int64_t started_ns = 0;
            };
            struct Labels {
                std::mutex mu;
                std::unordered_map<std::uint64_t, Info> by_id;
            };
            auto labels = std::make_shared<Labels>();
            o.trace = [start, labels](const rt::TraceEvent& e) {
                static const char* kinds[] = {"created", "started", "blocked", "resumed", "done"};
                double ms = double(e.time_ns - start) / 1e6;
                std::string detail;
                std::string label;
                if (e.kind == rt::TraceKind::Created) {
                    // Reported on the spawning task: where it is now is the spawn site.
                    Info info;
                    CodeSite site = spawn_site_here();
                    if (site.chunk) info.site = format_site(site);
                    if (const SpawnNote* n = t_spawn_note) {
                        info.label = std::string(n->name) + "#" + std::to_string(e.task_id);
                        info.kind = n->kind;
                    }
                    if (!info.site.empty()) detail = " at " + info.site;
                    label = info.label;
                    std::lock_guard<std::mutex> g(labels->mu);
                    labels->by_id[e.task_id] = std::move(info);
                } else {
                    std::lock_guard<std::mutex> g(labels->mu);
                    Info& info = labels->by_id[e.task_id];
                    if (info.label.empty() && e.kind == rt::TraceKind::Started) {
                        rt::Task* cur = rt::current_task();
                        if (cur && cur->id() == e.task_id) info.label = cur->label();
                    }
                    label = info.label;
                    if (e.kind == rt::TraceKind::Started) {
                        info.started_ns = e.time_ns;
                        if (!info.kind.empty()) detail += " (" + info.kind + ")";
                        if (!info.site.empty()) detail += " at " + info.site;
                    } else if (e.kind == rt::TraceKind::Blocked && e.what) {
                        detail = std::string(" on ") + e.what;
                    } else if (e.kind == rt::TraceKind::Done) {
                        char buf[32];
                        if (info.started_ns) {
                            snprintf(buf, sizeof buf, " %.1fms", double(e.time_ns - info.started_ns) / 1e6);
                            detail = buf;
                        }
                        labels->by_id.erase(e.task_id);
                    }
                }
                if (label.empty()) label = "#" + std::to_string(e.task_id);
                fprintf(stderr, "[task %s] %s%s (worker %d, %.3f ms)\n", label.c_str(), kinds[int(e.kind)],
                        detail.c_str(), e.worker, ms);
            };
        }
        // --trace's own hook, then --stats', then --trace-out's (and an embedder's): each event
        // goes to every hook that is set.
        using Hook = std::function<void(const rt::TraceEvent&)>;
        auto chain = [](Hook first, Hook then) -> Hook {
            if (!first) return then;
            if (!then) return first;
            return [first, then](const rt::TraceEvent& e) {
                first(e);
                then(e);
            };
        };
        if (options_.stats) {
            stats_ = std::make_unique<RunStats>();
            o.trace = chain(std::move(o.trace), stats_->hook());
        }
        o.trace = chain(std::move(o.trace), options_.trace_hook);
        runtime_ = std::make_unique<rt::Runtime>(o);
    }
}

void Vm::run_main_root(const std::function<void()>& fn) {
    runtime_->block_on(
        [&] {
            bind_main_task(main_.get());
            actors_begin_root(*this);  // actors' tasks are children of this root
            // The main interpreter runs on this task's stack until block_on returns.
            {
                std::lock_guard<std::mutex> g(main_task_mu_);
                main_task_ = rt::current_task();
            }
            struct Unbind {
                Vm* vm;
                Interp* in;
                ~Unbind() {
                    {
                        std::lock_guard<std::mutex> g(vm->main_task_mu_);
                        vm->main_task_ = nullptr;
                    }
                    in->unbind_task();
                }
            } unbind{this, main_.get()};
            main_->bind_task(Interp::TaskBinding{rt::current_stack_low(), 0});
            try {
                run_in_implicit_scope([&] {
                    fn();
                    return Value();
                });
            } catch (WeftError& e) {
                share(e.error);  // it is reported on the calling thread while workers may still hold it
                throw;
            }
        },
        "main");
}

namespace {
// A few interpreters per worker thread, so that starting and ending a task does not take the
// pool's lock (it was 12% of skynet with spawn + channels on two workers). Freed when the
// worker thread exits, which happens while the Vm is being destroyed (its runtime goes down);
// so never on a host thread running its own call (block_on_here), which outlives the Vm.
thread_local std::vector<std::unique_ptr<Interp>> tl_interps;
constexpr size_t kLocalInterps = 8;
}  // namespace

Interp* Vm::acquire_interp() {
    // (Not with a runtime shared by several Vms: a worker's cached interpreters could outlive
    // their Vm.)
    if (!options_.shared_runtime && !tl_interps.empty() && rt::current_task() && rt::on_worker_thread() &&
        &tl_interps.back()->vm() == this) {
        Interp* in = tl_interps.back().release();
        tl_interps.pop_back();
        in->refresh_recursion_limit();  // set_recursion_limit() since it was last used
        return in;
    }
    {
        std::lock_guard<std::mutex> g(pool_mu_);
        if (!pool_.empty()) {
            Interp* in = pool_.back().release();
            pool_.pop_back();
            in->refresh_recursion_limit();
            return in;
        }
    }
    return new Interp(*this, options_.task_stack_values);
}

void Vm::release_interp(Interp* in) {
    in->unbind_task();  // its next user may run on another stack
    if (!options_.shared_runtime && tl_interps.size() < kLocalInterps && rt::current_task() && rt::on_worker_thread() &&
        (tl_interps.empty() || &tl_interps.back()->vm() == this)) {
        tl_interps.emplace_back(in);
        return;
    }
    std::lock_guard<std::mutex> g(pool_mu_);
    if (pool_.size() < 256) {
        pool_.emplace_back(in);
    } else {
        delete in;
    }
}

// ---------------------------------------------------------------------------
// Compiling and running

namespace {

std::unique_ptr<Proto> materialize(const Chunk* c, ModuleObj* m) {
    auto p = std::make_unique<Proto>();
    p->chunk = c;
    p->module = m;
    for (auto& k : c->consts) {
        switch (k.kind) {
            case Constant::Kind::None:
                p->k.push_back(Value());
                break;
            case Constant::Kind::Bool:
                p->k.push_back(Value::boolean(k.i != 0));
                break;
            case Constant::Kind::Int:
                p->k.push_back(Value::integer(k.i));
                break;
            case Constant::Kind::Float:
                p->k.push_back(Value::number(k.f));
                break;
            case Constant::Kind::Str:
                p->k.push_back(Value::borrow(intern(k.s)));
                break;
            case Constant::Kind::Bytes:
                p->k.push_back(make_bytes(k.s));
                break;
            case Constant::Kind::NameTuple:
                p->k.push_back(Value());
                break;
        }
    }
    for (auto& child : c->children) p->children.push_back(materialize(child.get(), m));
    return p;
}

}  // namespace

Proto* Vm::compile_into(ModuleObj& m, const std::string& source, bool repl, std::unique_ptr<ast::Module>* ast_out) {
    // The Lisp surface (docs/language/lisp.md): `.wlisp` files, and with --lisp the programs
    // that have no file (-e, stdin, the REPL), are read and lowered onto the same AST; they
    // and the Lisp prelude (`__lisp__`) defer nothing (calls are sequential, spec section 5).
    bool lisp = lisp::is_lisp_path(m.path) ||
                (options_.lisp && m.name != "__lisp__" && (m.path.empty() || m.path[0] == '<'));
    std::unique_ptr<ast::Module> ast;
    if (lisp) {
        lisp::LowerOptions lo;
        lo.repl = repl;
        lo.known_globals = &m.layout.names;
        ast = lisp::parse_lisp_module(source, m.path, lo);
    } else {
        ast = parse_module(source, m.path);
    }
    CompileOptions opts;
    opts.repl = repl && !lisp;
    opts.sequential = options_.sequential || lisp || m.name == "__lisp__";
    opts.builtins = &builtin_index;
    auto chunk = compile_module(*ast, m.layout, opts);
    // Every chunk of this unit shares its source, for the source lines of tracebacks.
    auto text = std::make_shared<const SourceText>(source);
    std::vector<Chunk*> todo{chunk.get()};
    while (!todo.empty()) {
        Chunk* c = todo.back();
        todo.pop_back();
        c->source = text;
        for (auto& child : c->children) todo.push_back(child.get());
    }
    if (m.globals.size() < m.layout.names.size()) m.globals.resize(m.layout.names.size(), ModuleObj::undefined_marker());
    auto proto = materialize(chunk.get(), &m);
    m.chunks.push_back(std::move(chunk));
    m.protos.push_back(std::move(proto));
    if (ast_out) *ast_out = std::move(ast);
    return m.protos.back().get();
}

bool Vm::has_module(const std::string& name) {
    std::lock_guard<std::mutex> g(modules_mu_);
    return modules_.count(name) || host_modules_.count(name) || native_registry().count(name);
}

int Vm::report_compile_error(const CompileError& e, const std::string& source) {
    flush_stdout();
    std::string msg = format_diagnostic(e.diag, source);
    if (msg.empty() || msg.back() != '\n') msg += '\n';
    write_diagnostic(msg);
    return 2;
}

void Vm::write_diagnostic(const std::string& text) {
    if (options_.stderr_sink)
        options_.stderr_sink(text);  // an embedding host's (EngineOptions::stderr_sink)
    else
        fputs(text.c_str(), stderr);
}

void Vm::report_uncaught(const Value& err) {
    flush_stdout();
    std::string out = "Traceback (most recent call last):\n";
    if (err.is(ObjType::Struct) && err.as<StructObj>()->error) {
        auto* s = err.as<StructObj>();
        // A line repeated many times (deep recursion) is printed three times, then counted, as
        // CPython does. Lines that differ only in task numbers repeat too: a runaway recursion
        // through deferred returns (`return f(n + 1)`) leaves one "task f#N, started at ..."
        // line per level.
        const auto& tr = s->error->trace;
        auto same_line = [](const std::string& a, const std::string& b) {
            size_t i = 0, j = 0;
            while (i < a.size() && j < b.size()) {
                if (a[i] == '#' && b[j] == '#') {
                    ++i, ++j;
                    while (i < a.size() && isdigit((unsigned char)a[i])) ++i;
                    while (j < b.size() && isdigit((unsigned char)b[j])) ++j;
                    continue;
                }
                if (a[i] != b[j]) return false;
                ++i, ++j;
            }
            return i == a.size() && j == b.size();
        };
        auto add_trace = [&](const std::vector<std::string>& lines, const std::string& indent) {
            for (size_t i = 0; i < lines.size();) {
                size_t j = i;
                while (j < lines.size() && same_line(lines[j], lines[i])) ++j;
                size_t run = j - i, shown = std::min<size_t>(run, 3);
                for (size_t k = 0; k < shown; ++k) {
                    // A frame's line may carry its source line and carets below it
                    // (source_excerpt): each of those lines is indented too.
                    std::string entry = indent + lines[i + k];
                    for (size_t at = 0; (at = entry.find('\n', at)) != std::string::npos; at += 1 + indent.size())
                        entry.insert(at + 1, indent);
                    out += entry + "\n";
                }
                if (run > shown) out += indent + "[previous line repeated " + std::to_string(run - shown) + " more times]\n";
                i = j;
            }
        };
        add_trace(tr, "  ");
        out += s->type->name;
        if (!s->error->message.empty()) out += ": " + s->error->message;
        out += "\n";
        // The errors of a group, each with its own trace (where it was raised, and for a
        // deferred call or task, where that was started), indented below it; the lines it
        // shares with the group's trace (the frames both passed through) are not repeated.
        for (auto& sub : s->error->errors) {
            if (sub.is(ObjType::Struct) && sub.as<StructObj>()->error) {
                auto* se = sub.as<StructObj>();
                out += "  - " + se->type->name + ": " + se->error->message + "\n";
                const auto& st = se->error->trace;
                size_t common = 0;
                while (common < st.size() && common < tr.size() && st[common] == tr[common]) ++common;
                add_trace(std::vector<std::string>(st.begin() + long(common), st.end()), "      ");
            }
        }
    } else {
        out += "Error: " + repr(err) + "\n";
    }
    write_diagnostic(out);
}

int Vm::report_uncaught_status(const Value& err) {
    flush_stdout();
    int st = system_exit_status(err);  // exit(code): no traceback
    if (st >= 0) return st;
    // Stopped by SIGINT/SIGTERM and cleaned up: no traceback; the command line prints one line.
    if (int sig = stop_signal.load(std::memory_order_acquire); sig != 0 && is_cancelled_value(err)) return 128 + sig;
    report_uncaught(err);
    return is_import_failure(err) ? 2 : 1;  // a missing or broken import is a compile-time problem
}

int Vm::run_main(ModuleObj* m, const std::string& source) {
    Proto* p;
    try {
        p = compile_into(*m, source, false);
    } catch (CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = m->path;
        return report_compile_error(e, source);
    }
    m->initializing = true;
    try {
        in_runtime([&] {
            try {
                main_->run_module_chunk(m, p);
            } catch (...) {
                // Live actors are stopped at the end of the program, whatever its end.
                try {
                    actors_shutdown(*this, false);
                } catch (...) {
                }
                throw;
            }
            actors_shutdown(*this, true);
        });
    } catch (WeftError& e) {
        Value err = main_->error_value(e);
        return report_uncaught_status(err);
    } catch (CompileError& e) {
        // A compile error in an imported module.
        std::string src;
        read_source_file(e.diag.path, src);
        return report_compile_error(e, src);
    } catch (...) {
        // An error of a task that nobody forced, raised when the program's scope ends.
        return report_uncaught_status(main_->runtime_error_value(std::current_exception()));
    }
    m->initialized = true;
    flush_stdout();
    return 0;
}

int Vm::run_file(const std::string& path) {
    VmScope scope(this);
    std::string source;
    // A program may always read its own source files, and import those of its folder tree.
    sources_->add(path);
    sources_->set_root(std::filesystem::path(canonical_path(path)).parent_path().string());
    if (!read_source_file(path, source)) {
        write_diagnostic("weft: cannot open '" + path + "': " + strerror(errno) + "\n");
        return 2;
    }
    return run_source(source, path);
}

int Vm::run_source(const std::string& source, const std::string& path) {
    VmScope scope(this);
    auto* m = new ModuleObj();
    m->name = "__main__";
    m->path = path;
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(path, ec);
    modules_[ec ? path : canon.string()] = m;
    return run_main(m, source);
}

int Vm::check_file(const std::string& path) {
    VmScope scope(this);
    std::string source;
    sources_->set_root(std::filesystem::path(canonical_path(path)).parent_path().string());
    if (!read_source_file(path, source)) {
        fprintf(stderr, "weft: cannot open '%s': %s\n", path.c_str(), strerror(errno));
        return 2;
    }
    ModuleObj m;
    m.path = path;
    std::unique_ptr<ast::Module> ast;
    try {
        compile_into(m, source, false, &ast);
    } catch (CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = path;
        return report_compile_error(e, source);
    }
    std::unordered_set<std::string> seen;
    return check_imports(*ast, path, source, seen);
}

// Vm::run_tests (`weft test`) is in vm/test_runner.cpp.

bool Vm::repl_input(const std::string& source, bool* had_error, int* exit_status) {
    VmScope scope(this);
    if (had_error) *had_error = false;
    if (exit_status) *exit_status = -1;
    if (!repl_module_) {
        repl_module_ = new ModuleObj();
        repl_module_->name = "__main__";
        repl_module_->path = "<stdin>";
    }
    Proto* p;
    try {
        p = compile_into(*repl_module_, source, true);
    } catch (CompileError& e) {
        if (e.incomplete) return false;
        if (e.diag.path.empty()) e.diag.path = "<stdin>";
        report_compile_error(e, source);
        if (had_error) *had_error = true;
        return true;
    }
    // exit() ends the session with its status; any other error is reported and the session
    // goes on.
    {
        std::lock_guard<std::mutex> g(main_task_mu_);
        interrupted_ = false;
    }
    auto failed = [&](const Value& err) {
        flush_stdout();
        int st = system_exit_status(err);
        bool interrupted;
        {
            std::lock_guard<std::mutex> g(main_task_mu_);
            interrupted = interrupted_;
        }
        if (st >= 0) {
            if (exit_status) *exit_status = st;
        } else if (interrupted && is_cancelled_value(err)) {
            fputs("KeyboardInterrupt\n", stderr);  // Ctrl-C: the statement was cancelled
        } else {
            report_uncaught(err);
        }
        if (had_error) *had_error = true;
    };
    try {
        in_runtime([&] { main_->run_module_chunk(repl_module_, p); });
    } catch (WeftError& e) {
        failed(main_->error_value(e));
    } catch (...) {
        failed(main_->runtime_error_value(std::current_exception()));
    }
    flush_stdout();
    return true;
}

// The Lisp prelude (compiler/lisp/prelude.cpp): a Weft module compiled and run once, on the
// first import by a lowered `.wlisp` module; later imports (any task) get the same module.
ModuleObj* Vm::lisp_prelude(Interp& in) {
    // Its frames are left out of tracebacks by this path (Interp's traceback).
    return internal_module(in, "__lisp__", lisp::prelude_source(), "<lisp prelude>");
}

ModuleObj* Vm::internal_module(Interp& in, const std::string& name, std::string_view source,
                               const std::string& path) {
    std::unique_lock<std::mutex> lock(modules_mu_);
    auto it = modules_.find(name);
    if (it != modules_.end()) {
        ModuleObj* m = it->second;
        lock.unlock();
        while (!m->initialized) rt::sleep_for(0.0005);  // another task is running its top level
        return m;
    }
    auto* m = new ModuleObj();
    m->imported = true;
    m->name = name;
    m->path = path.empty() ? "<" + name + ">" : path;
    m->source = std::string(source);
    modules_[name] = m;
    Proto* p = compile_into(*m, m->source, false);  // a CompileError here is a bug of the module
    m->initializing = true;
    lock.unlock();
    in.run_module_chunk(m, p);
    share_all(m->globals);
    m->initialized = true;
    return m;
}

ModuleObj* Vm::import_module(Interp& in, const std::string& name, const ModuleObj* importer) {
    bool is_path = name.rfind("./", 0) == 0 || name.rfind("../", 0) == 0 || name.rfind("/", 0) == 0 ||
                   (name.size() > 5 && name.compare(name.size() - 5, 5, ".weft") == 0) || lisp::is_lisp_path(name);
    if (name == "__lisp__") return lisp_prelude(in);
    if (!is_path) {
        std::unique_lock<std::mutex> g(modules_mu_);
        auto it = modules_.find(name);
        if (it != modules_.end()) return it->second;
        if (auto h = host_modules_.find(name); h != host_modules_.end()) {  // an embedder's
            auto* m = new ModuleObj();
            m->name = name;
            m->imported = true;
            h->second(*m);
            share_all(m->globals);
            m->initialized = true;
            modules_[name] = m;
            return m;
        }
        auto& reg = native_registry();
        auto r = reg.find(name);
        if (r == reg.end()) {
            if (options_.load_module) {  // an embedding host's scripts (EngineOptions::load_module)
                g.unlock();
                if (ModuleObj* m = import_from_host(in, name, importer)) return m;
            }
            throw_import_failure(ErrorKind::NameError, "no module named '" + name + "'" +
                                                          module_name_hint(name, importer ? importer->path : ""));
        }
        auto* m = new ModuleObj();
        m->name = name;
        m->imported = true;
        r->second(*m);
        // The functions that wait on the outside world (every function of http, fs, proc, net,
        // and time.sleep) are deferred in deferral positions (spec section 5; `x =
        // http.get(u)` starts a task). Natives of a module are named "module.function".
        bool all_blocking = name == "http" || name == "fs" || name == "proc" || name == "net";
        // And the modules whose functions only compute (NativeObj::computes).
        bool computing = name == "json" || name == "re" || name == "math" || name == "random" || name == "uuid" ||
                         name == "time";
        for (auto& v : m->globals) {
            if (!v.is(ObjType::Native)) continue;
            auto* nf = v.as<NativeObj>();
            if (all_blocking || nf->name == "time.sleep") nf->blocking = true;
            nf->computes = computing && !nf->blocking;
        }
        share_all(m->globals);
        m->initialized = true;
        modules_[name] = m;
        return m;
    }
    // An embedding host decides first where a path import comes from (no capability needed:
    // the host grants it by answering).
    if (options_.load_module)
        if (ModuleObj* m = import_from_host(in, name, importer)) return m;
    namespace fs = std::filesystem;
    fs::path base = importer && !importer->path.empty() && importer->path[0] != '<'
                        ? fs::path(importer->path).parent_path()
                        : fs::current_path();
    reject_nul(name);
    fs::path full = name[0] == '/' ? fs::path(name) : base / name;
    std::string key = canonical_path(full.string());
    // Importing is reading (spec section 11): without a grant a program imports only the
    // .weft/.wlisp files of its own folder tree; anything else needs --allow-read for the file
    // and obeys restrict()/@effects. Checked before the file is opened or compiled, so a
    // refused import says nothing of the file (not even whether it exists).
    std::string ext = fs::path(key).extension().string();
    bool own_tree = (ext == ".weft" || ext == ".wlisp") && path_within(key, sources_->root());
    if (!own_tree) require_read(in, key, "importing");
    std::unique_lock<std::mutex> lock(modules_mu_);
    auto it = modules_.find(key);
    if (it != modules_.end()) return it->second;  // runs once; a cycle sees the partial module
    std::string source;
    if (!read_source_file(key, source))
        throw_import_failure(ErrorKind::IOError, "cannot import '" + name + "': no such file " + key);
    auto* m = new ModuleObj();
    m->imported = true;
    m->name = fs::path(key).stem().string();
    m->path = full.lexically_normal().string();
    m->source = source;
    modules_[key] = m;
    Proto* p;
    try {
        p = compile_into(*m, source, false);
    } catch (CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = m->path;
        // Report with the imported file's source, then fail the import.
        report_compile_error(e, source);
        throw_import_failure(ErrorKind::Error, "compile error in imported module '" + name + "'");
    }
    sources_->add(key);  // only a module that compiled becomes one of the program's sources
    m->initializing = true;
    lock.unlock();  // the module's code may block, spawn and import
    in.run_module_chunk(m, p);
    m->initialized = true;
    return m;
}

ModuleObj* Vm::import_from_host(Interp& in, const std::string& name, const ModuleObj* importer) {
    std::string key = "<host>:" + name;
    {
        std::lock_guard<std::mutex> g(modules_mu_);
        auto it = modules_.find(key);
        if (it != modules_.end()) return it->second;
    }
    std::optional<std::string> source;
    try {
        source = options_.load_module(name, importer ? (importer->path.empty() ? importer->name : importer->path) : "");
    } catch (const std::exception& e) {
        throw_import_failure(ErrorKind::Error, "cannot import '" + name + "': the host's loader failed: " + e.what());
    }
    if (!source) return nullptr;
    std::unique_lock<std::mutex> lock(modules_mu_);
    auto it = modules_.find(key);
    if (it != modules_.end()) return it->second;  // another task loaded it meanwhile
    auto* m = new ModuleObj();
    m->imported = true;
    std::string stem = std::filesystem::path(name).stem().string();
    m->name = stem.empty() ? name : stem;
    m->path = "<" + name + ">";
    m->source = *source;
    modules_[key] = m;
    Proto* p;
    try {
        p = compile_into(*m, *source, false);
    } catch (CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = m->path;
        report_compile_error(e, *source);
        throw_import_failure(ErrorKind::Error, "compile error in imported module '" + name + "'");
    }
    m->initializing = true;
    lock.unlock();  // the module's code may block, spawn and import
    in.run_module_chunk(m, p);
    m->initialized = true;
    return m;
}

}  // namespace weft
