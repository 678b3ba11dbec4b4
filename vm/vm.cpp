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

#include "compiler/parser.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/run_stats.h"
#include "vm/task_context.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

Vm* g_vm = nullptr;  // the running program (make_error needs the error types)

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
    "AttributeError", "NameError", "RecursionError", "AssertionError", "TimeoutError", "ChannelClosed",
    "PermissionDenied", "IOError", "NetworkError", "ProcessError", "ActorStopped", "Deadlock", "ErrorGroup",
    "PartialFailure", "Cancelled",
};

bool read_file(const std::string& path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}


Value bi_error(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "error() takes exactly one argument (the message)");
    return make_error(ErrorKind::Error, to_str(a.pos[0]));
}

Value bi_is_error(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "is_error() takes exactly one argument");
    const Value& v = a.pos[0];
    return Value::boolean(v.is(ObjType::Struct) && v.as<StructObj>()->error != nullptr);
}

Value bi_repl_print(CallContext& cx, const CallArgs& a) {
    if (!a.pos.empty() && !a.pos[0].is_none()) cx.write_stdout(repr(a.pos[0]) + "\n");
    return Value();
}


}  // namespace

Obj* const ModuleObj::undefined_obj = undefined_singleton();
Value ModuleObj::undefined_marker() { return Value::borrow(undefined_obj); }

const char* error_kind_name(ErrorKind k) {
    return size_t(k) < size_t(ErrorKind::Count) ? kErrorNames[size_t(k)] : "Error";
}

Value make_error(ErrorKind kind, std::string msg) {
    if (!g_vm) {
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
    return g_vm->make_error(kind, std::move(msg));
}

void Vm::register_native_module(const std::string& name, NativeModuleInit init) { native_registry()[name] = init; }

Vm::Vm(VmOptions options)
    : options_(std::move(options)), program_caps_(std::make_shared<const CapabilitySet>(options_.caps)) {
    g_vm = this;
    init_error_types();
    init_builtins();
    main_ = std::make_unique<Interp>(*this);
}

Vm::~Vm() {
    flush_stdout();
    if (stats_ && runtime_) stats_->print(stderr, runtime_->counters(), runtime_->workers());
    pool_.clear();
    runtime_.reset();
    main_.reset();
    // Modules, builtins and error types are immortal while the program runs
    // (shared by every task without count traffic); the VM frees them here, in
    // dependency order, so leak checkers see a clean exit.
    std::vector<ModuleObj*> mods;
    for (auto& [key, m] : modules_) mods.push_back(m);
    if (repl_module_) mods.push_back(repl_module_);
    std::sort(mods.begin(), mods.end());
    mods.erase(std::unique(mods.begin(), mods.end()), mods.end());
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
    if (g_vm == this) g_vm = nullptr;
}

void Vm::init_error_types() {
    for (size_t k = 0; k < size_t(ErrorKind::Count); ++k) {
        auto* t = new StructTypeObj();
        t->name = kErrorNames[k];
        t->is_error = true;
        t->builtin_error = int(k);
        t->flags = Obj::kImmortal;
        ErrorKind kind = ErrorKind(k);
        if (kind == ErrorKind::Cancelled) {
            t->base = nullptr;  // not an Error: `except Error` does not catch it
        } else if (kind == ErrorKind::PartialFailure) {
            t->base = error_types_[size_t(ErrorKind::ErrorGroup)];
        } else if (kind == ErrorKind::TimeoutError) {
            t->base = error_types_[0];
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
    native("__repl_print__", bi_repl_print);
    register_concurrency_builtins(*this);
    std::vector<Value> argv;
    for (auto& a : options_.argv) argv.push_back(make_str(a));
    add_builtin("args", make_list(std::move(argv)));
}

void Vm::write_stdout(std::string_view s) {
    std::lock_guard<std::mutex> g(out_mu_);
    out_buf_.append(s);
    if (out_buf_.size() > (1 << 16)) flush_stdout_locked();
}

void Vm::flush_stdout() {
    std::lock_guard<std::mutex> g(out_mu_);
    flush_stdout_locked();
}

void Vm::flush_stdout_locked() {
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
    if (!runtime_) {
        rt::RuntimeOptions o;
        o.workers = options_.workers ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
        g_multi_worker.store(o.workers > 1, std::memory_order_relaxed);
        share_all(builtins);  // every task reads them
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
    runtime_->block_on(
        [&] {
            bind_main_task(main_.get());
            // The main interpreter runs on this task's stack until block_on returns.
            struct Unbind {
                Interp* in;
                ~Unbind() { in->unbind_task(); }
            } unbind{main_.get()};
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
// worker thread exits, which happens while the Vm is being destroyed (its runtime goes down).
thread_local std::vector<std::unique_ptr<Interp>> tl_interps;
constexpr size_t kLocalInterps = 8;
}  // namespace

Interp* Vm::acquire_interp() {
    if (!tl_interps.empty() && rt::current_task()) {
        Interp* in = tl_interps.back().release();
        tl_interps.pop_back();
        return in;
    }
    {
        std::lock_guard<std::mutex> g(pool_mu_);
        if (!pool_.empty()) {
            Interp* in = pool_.back().release();
            pool_.pop_back();
            return in;
        }
    }
    return new Interp(*this, options_.task_stack_values);
}

void Vm::release_interp(Interp* in) {
    in->unbind_task();  // its next user may run on another stack
    if (tl_interps.size() < kLocalInterps && rt::current_task()) {
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

Proto* Vm::compile_into(ModuleObj& m, const std::string& source, bool repl) {
    auto ast = parse_module(source, m.path);
    CompileOptions opts;
    opts.repl = repl;
    opts.sequential = options_.sequential;
    opts.builtins = &builtin_index;
    auto chunk = compile_module(*ast, m.layout, opts);
    if (m.globals.size() < m.layout.names.size()) m.globals.resize(m.layout.names.size(), ModuleObj::undefined_marker());
    auto proto = materialize(chunk.get(), &m);
    m.chunks.push_back(std::move(chunk));
    m.protos.push_back(std::move(proto));
    return m.protos.back().get();
}

int Vm::report_compile_error(const CompileError& e, const std::string& source) {
    flush_stdout();
    std::string msg = format_diagnostic(e.diag, source);
    fputs(msg.c_str(), stderr);
    if (msg.empty() || msg.back() != '\n') fputc('\n', stderr);
    return 2;
}

void Vm::report_uncaught(const Value& err) {
    flush_stdout();
    std::string out = "Traceback (most recent call last):\n";
    if (err.is(ObjType::Struct) && err.as<StructObj>()->error) {
        auto* s = err.as<StructObj>();
        // A line repeated many times (deep recursion) is printed three times, then counted.
        const auto& tr = s->error->trace;
        for (size_t i = 0; i < tr.size();) {
            size_t j = i;
            while (j < tr.size() && tr[j] == tr[i]) ++j;
            size_t run = j - i, shown = std::min<size_t>(run, 3);
            for (size_t k = 0; k < shown; ++k) out += "  " + tr[i] + "\n";
            if (run > shown) out += "  [previous line repeated " + std::to_string(run - shown) + " more times]\n";
            i = j;
        }
        out += s->type->name;
        if (!s->error->message.empty()) out += ": " + s->error->message;
        out += "\n";
        for (auto& sub : s->error->errors) {
            if (sub.is(ObjType::Struct) && sub.as<StructObj>()->error) {
                auto* se = sub.as<StructObj>();
                out += "  - " + se->type->name + ": " + se->error->message + "\n";
            }
        }
    } else {
        out += "Error: " + repr(err) + "\n";
    }
    fputs(out.c_str(), stderr);
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
        in_runtime([&] { main_->run_module_chunk(m, p); });
    } catch (WeftError& e) {
        Value err = main_->error_value(e);
        report_uncaught(err);
        return 1;
    } catch (CompileError& e) {
        // A compile error in an imported module.
        std::string src;
        read_file(e.diag.path, src);
        return report_compile_error(e, src);
    } catch (...) {
        // An error of a task that nobody forced, raised when the program's scope ends.
        report_uncaught(main_->runtime_error_value(std::current_exception()));
        return 1;
    }
    m->initialized = true;
    flush_stdout();
    return 0;
}

int Vm::run_file(const std::string& path) {
    std::string source;
    add_own_source(path);  // a program may always read its own source files
    if (!read_file(path, source)) {
        fprintf(stderr, "weft: cannot open '%s': %s\n", path.c_str(), strerror(errno));
        return 2;
    }
    return run_source(source, path);
}

int Vm::run_source(const std::string& source, const std::string& path) {
    auto* m = new ModuleObj();
    m->name = "__main__";
    m->path = path;
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(path, ec);
    modules_[ec ? path : canon.string()] = m;
    return run_main(m, source);
}

int Vm::check_file(const std::string& path) {
    std::string source;
    if (!read_file(path, source)) {
        fprintf(stderr, "weft: cannot open '%s': %s\n", path.c_str(), strerror(errno));
        return 2;
    }
    ModuleObj m;
    m.path = path;
    try {
        compile_into(m, source, false);
    } catch (CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = path;
        return report_compile_error(e, source);
    }
    return 0;
}

int Vm::run_tests(const std::vector<std::string>& paths) {
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    for (auto& p : paths) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
                 it != fs::recursive_directory_iterator(); it.increment(ec)) {
                std::string name = it->path().filename().string();
                if (it->is_regular_file(ec) && name.size() > 10 && name.compare(name.size() - 10, 10, "_test.weft") == 0)
                    files.push_back(it->path().string());
            }
        } else if (fs::exists(p, ec)) {
            files.push_back(p);
        } else {
            fprintf(stderr, "weft test: no such file or directory: %s\n", p.c_str());
            return 2;
        }
    }
    std::sort(files.begin(), files.end());
    int passed = 0, failed = 0;
    for (auto& f : files) {
        std::string source;
        if (!read_file(f, source)) {
            fprintf(stderr, "weft test: cannot read %s\n", f.c_str());
            return 2;
        }
        auto* m = new ModuleObj();
        m->name = fs::path(f).stem().string();
        m->path = f;
        Proto* p;
        try {
            p = compile_into(*m, source, false);
        } catch (CompileError& e) {
            if (e.diag.path.empty()) e.diag.path = f;
            return report_compile_error(e, source);
        }
        try {
            in_runtime([&] { main_->run_module_chunk(m, p); });
        } catch (WeftError& e) {
            flush_stdout();
            fprintf(stderr, "ERROR %s (while loading)\n", f.c_str());
            report_uncaught(main_->error_value(e));
            ++failed;
            continue;
        } catch (...) {
            flush_stdout();
            fprintf(stderr, "ERROR %s (while loading)\n", f.c_str());
            report_uncaught(main_->runtime_error_value(std::current_exception()));
            ++failed;
            continue;
        }
        for (auto& name : m->layout.names) {
            if (name.rfind("test_", 0) != 0) continue;
            Value found;
            const Value* fn = m->find(name, found) ? &found : nullptr;
            if (!fn || !fn->is(ObjType::Function)) continue;
            Value err;
            try {
                Value test = *fn;
                in_runtime([&] { main_->call(test, {}); });
            } catch (WeftError& e) {
                err = main_->error_value(e);
            } catch (...) {
                err = main_->runtime_error_value(std::current_exception());
            }
            flush_stdout();
            printf("%s %s::%s\n", err.is_none() ? "PASS" : "FAIL", f.c_str(), name.c_str());
            fflush(stdout);
            if (err.is_none()) {
                ++passed;
            } else {
                report_uncaught(err);
                ++failed;
            }
        }
    }
    flush_stdout();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

bool Vm::repl_input(const std::string& source, bool* had_error) {
    if (had_error) *had_error = false;
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
    try {
        in_runtime([&] { main_->run_module_chunk(repl_module_, p); });
    } catch (WeftError& e) {
        report_uncaught(main_->error_value(e));
        if (had_error) *had_error = true;
    } catch (...) {
        report_uncaught(main_->runtime_error_value(std::current_exception()));
        if (had_error) *had_error = true;
    }
    flush_stdout();
    return true;
}

ModuleObj* Vm::import_module(Interp& in, const std::string& name, const ModuleObj* importer) {
    bool is_path = name.rfind("./", 0) == 0 || name.rfind("../", 0) == 0 || name.rfind("/", 0) == 0 ||
                   (name.size() > 5 && name.compare(name.size() - 5, 5, ".weft") == 0);
    if (!is_path) {
        std::lock_guard<std::mutex> g(modules_mu_);
        auto it = modules_.find(name);
        if (it != modules_.end()) return it->second;
        auto& reg = native_registry();
        auto r = reg.find(name);
        if (r == reg.end()) throw WeftError(ErrorKind::NameError, "no module named '" + name + "'");
        auto* m = new ModuleObj();
        m->name = name;
        m->imported = true;
        r->second(*m);
        // The functions that wait on the outside world (every function of http, fs and proc,
        // and time.sleep) are deferred in deferral positions (spec section 5; `x =
        // http.get(u)` starts a task). Natives of a module are named "module.function".
        bool all_blocking = name == "http" || name == "fs" || name == "proc";
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
    namespace fs = std::filesystem;
    fs::path base = importer && !importer->path.empty() && importer->path[0] != '<'
                        ? fs::path(importer->path).parent_path()
                        : fs::current_path();
    fs::path full = name[0] == '/' ? fs::path(name) : base / name;
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(full, ec);
    std::string key = ec ? full.string() : canon.string();
    std::unique_lock<std::mutex> lock(modules_mu_);
    auto it = modules_.find(key);
    if (it != modules_.end()) return it->second;  // runs once; a cycle sees the partial module
    std::string source;
    if (!read_file(key, source)) throw WeftError(ErrorKind::IOError, "cannot import '" + name + "': no such file " + key);
    add_own_source(key);
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
        throw WeftError(ErrorKind::Error, "compile error in imported module '" + name + "'");
    }
    m->initializing = true;
    lock.unlock();  // the module's code may block, spawn and import
    in.run_module_chunk(m, p);
    m->initialized = true;
    return m;
}

}  // namespace weft
