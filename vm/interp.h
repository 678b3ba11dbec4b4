// interp.h — the Weft virtual machine: program-wide state (Vm) and the
// register interpreter (Interp) that runs bytecode.
//
// Vm holds what every task of a program shares: builtins, error types, loaded
// modules, options. Interp is one thread of execution: a value stack of
// registers and a stack of call frames. Today a program runs one Interp; the
// concurrency layer will give each task its own, on its own fiber.
//
// The value stack is one fixed mmap'ed region, lazily committed by the OS, and
// never moves: raw pointers into registers stay valid across calls (the Place*
// instructions depend on this). Zeroed memory is a valid array of None values.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compiler/codegen.h"
#include "compiler/diagnostic.h"
#include "vm/capabilities.h"
#include "vm/function.h"
#include "vm/native.h"
#include "vm/task_context.h"

namespace weft {
namespace limits {
struct State;
}

class Interp;
struct CallBudget;
struct CodeSite;  // vm/task_context.h
class RunStats;  // vm/run_stats.h
struct PromiseObj;  // vm/tasks.h
namespace rt {
class Runtime;
class Task;
class TaskRef;
class CancelScope;
struct TraceEvent;
}

// Reads a whole source file into `out`. False when it cannot, with errno set (EISDIR for a
// folder, which an ifstream would open and read as empty). Blocks on the file system.
bool read_source_file(const std::string& path, std::string& out);

struct VmOptions {
    std::vector<std::string> argv;  // the script's arguments (`args`)
    std::string program;            // the program's path ("-e", "-" for stdin): sys.argv[0]
    // Call depth before RecursionError (--max-depth; set_recursion_limit() changes it while
    // the program runs). Weft frames live in the interpreter's own arrays, not on the native
    // stack, so the depth costs only the memory of the frames used; the value stack
    // (stack_values, task_stack_values) also bounds it.
    size_t max_depth = 200000;
    size_t stack_values = size_t(1) << 22;  // value-stack capacity (registers), 64 MiB reserved
    // What the program may do (from --allow-* flags); the Vm gives it a fresh
    // `own_sources` to which the program's source files are added as they load.
    CapabilitySet caps;
    // Worker threads of the fiber runtime; 0 = one per core. With more than
    // one, values that cross tasks switch to atomic reference counts
    // (vm/share.cpp).
    unsigned workers = 0;
    // Value-stack capacity of the interpreters of spawned tasks (registers).
    size_t task_stack_values = size_t(1) << 20;
    bool sequential = false;  // --sequential: no implicit deferral of calls
    // --lisp: programs with no file extension (`-e`, standard input, the REPL) are Lisp
    // (docs/language/lisp.md); `.wlisp` files always are.
    bool lisp = false;
    bool trace = false;  // --trace: one line per task event on stderr
    bool stats = false;  // --stats: runtime counters on stderr at exit
    // --default-timeout (seconds, 0 = none) and --max-tasks (0 = unlimited); see vm/limits.h.
    double default_timeout = 0;
    size_t max_tasks = 0;
    // An extra runtime trace hook (--trace-out installs one; see vm/trace_out.h). Called on
    // worker threads for every task event; must be thread-safe.
    std::function<void(const rt::TraceEvent&)> trace_hook;
    // rt::RuntimeOptions::install_signal_handlers: the CLI sets it (a fiber-stack overflow is
    // reported by name); an embedding host leaves it off unless it wants the handler.
    bool install_signal_handlers = false;
    // Embedding (include/weft/weft.hpp): where the program's standard output goes (null: file
    // descriptor 1), and a runtime shared with other Vms (null: the Vm starts its own).
    std::function<void(std::string_view)> stdout_sink;
    std::shared_ptr<rt::Runtime> shared_runtime;
    // Embedding (weft::EngineOptions::load_module): the source of a module the program imports,
    // asked before the file system (a path import) or after the standard and host modules (a
    // name): `name` as written in the import, `importer` the importing module's path or name.
    // nullopt: not the host's (the usual search goes on). Called on a worker; must be
    // thread-safe and must not block for long.
    std::function<std::optional<std::string>(std::string_view name, std::string_view importer)> load_module;
    // Embedding (weft::EngineOptions::stderr_sink): where the program's standard error goes
    // (print(file=sys.stderr), sys.stderr.write, an imported module's compile error); null:
    // file descriptor 2. Called from any thread, one call at a time.
    std::function<void(std::string_view)> stderr_sink;
};

// A native module is built on first import.
using NativeModuleInit = void (*)(ModuleObj& m);

class Vm {
public:
    explicit Vm(VmOptions options);
    ~Vm();

    // Runs a program file as the main module. Returns the process exit status
    // (0 ok, 1 uncaught error, 2 compile error); diagnostics go to stderr.
    int run_file(const std::string& path);
    // Runs source text as the main module (`weft -e`).
    int run_source(const std::string& source, const std::string& path);
    // Compiles only (`weft check`): 0 ok, 2 compile error.
    int check_file(const std::string& path);
    // `weft test`: runs every `test_*` function of each `*_test.weft` file under
    // the given paths (files or directories) whose `file::name` contains `pattern`, each
    // within `timeout` seconds (0: no bound). Prints one line per test with its time, a
    // traceback for each failure and a summary. Returns 0 when all pass, 1 when any fails,
    // 2 on a compile error or a missing path, 5 when no test was collected (pytest's codes).
    struct TestOptions {
        std::vector<std::string> paths;
        std::string pattern;   // -k: substring of "file::test_name"; "" selects all
        double timeout = 60;   // --timeout, seconds per test; 0 = none
    };
    int run_tests(const TestOptions& opts);
    // REPL: runs one complete input in the persistent REPL module. Returns false
    // when the input is incomplete (more lines are needed). Errors are printed; an exit()
    // sets *exit_status to the status it asks for (else -1).
    bool repl_input(const std::string& source, bool* had_error = nullptr, int* exit_status = nullptr);

    // Cancels the running main task, if any (the REPL's Ctrl-C): its next checkpoint raises
    // Cancelled, `finally` blocks run and its tasks are cancelled. Returns whether a task was
    // running. Thread-safe (call it from a watcher thread, not from a signal handler).
    bool interrupt_main();
    // A diagnostic or traceback for the user: to the embedding host's stderr sink, else to
    // file descriptor 2.
    void write_diagnostic(const std::string& text);
    // The signal (SIGINT or SIGTERM) that asked the program to stop, or 0; set by
    // cli/signals.cpp before it calls interrupt_main(). After SIGINT the main task's
    // cancellation is raised in it as KeyboardInterrupt; an uncaught KeyboardInterrupt or
    // Cancelled then ends the program without a traceback (the command line prints one line
    // and exits with 128 + the signal).
    std::atomic<int> stop_signal{0};

    // Registers a native module available to `import name`.
    static void register_native_module(const std::string& name, NativeModuleInit init);

    // Builtins (shared, read-only once the program starts).
    std::vector<Value> builtins;
    std::unordered_map<std::string, int> builtin_index;
    void add_builtin(const std::string& name, Value v);

    StructTypeObj* error_type(ErrorKind k) const { return error_types_[size_t(k)]; }
    Value make_error(ErrorKind k, std::string message);

    // Module loading (used by the Import instruction).
    ModuleObj* import_module(Interp& in, const std::string& name, const ModuleObj* importer);
    // The module `name` from VmOptions::load_module (compiled and run once, cached under
    // "<host>:name"), or null when the host has no source for it.
    ModuleObj* import_from_host(Interp& in, const std::string& name, const ModuleObj* importer);
    // The Lisp prelude module `__lisp__` (vm/vm.cpp), built on first use.
    ModuleObj* lisp_prelude(Interp& in);

    const VmOptions& options() const { return options_; }
    // The call depth before RecursionError: --max-depth, then set_recursion_limit(n), which
    // applies to the calling task at once and to every task from its next start. Thread-safe.
    size_t recursion_limit() const { return recursion_limit_.load(std::memory_order_relaxed); }
    void set_recursion_limit(size_t n) { recursion_limit_.store(n, std::memory_order_relaxed); }
    Interp& main_interp() { return *main_; }

    // The program's capabilities (from the --allow-* flags), which every task starts with. The
    // Vm owns them for its lifetime, so the pointer handed out does not own them: copying it
    // (every spawn does) touches no reference count shared by all threads.
    std::shared_ptr<const CapabilitySet> program_capabilities() const {
        return std::shared_ptr<const CapabilitySet>(std::shared_ptr<const CapabilitySet>(), program_caps_.get());
    }

    // Buffered standard output shared by the program: line-buffered when stdout is a terminal
    // (or with --trace, so that output and trace lines keep their order), block-buffered
    // (64 KiB) on a pipe or file; flushed at exit, before reading stdin and before a
    // traceback. Thread-safe.
    void write_stdout(std::string_view s);
    void flush_stdout();
    void flush_stdout_locked();

    // Interpreters for tasks: taken when a task starts running Weft code and
    // returned when it ends (pooled: value stacks are reused). Thread-safe.
    Interp* acquire_interp();
    void release_interp(Interp* in);

    // The program's actors (vm/actors.h): created on first use, destroyed with the Vm.
    class ActorSystem* actor_system = nullptr;
    // A module of the runtime written in Weft (vm/actors_lib.cpp's supervision), compiled from
    // `source` and run on `in` on first use, under `name`; later calls return it. A task that
    // asks while another initializes it waits for the end of that initialization.
    // `path` names it in tracebacks ("<name>" when empty). The Lisp prelude is one of them.
    ModuleObj* internal_module(Interp& in, const std::string& name, std::string_view source,
                               const std::string& path = "");

private:
    friend class Interp;
    void init_builtins();
    void init_error_types();
    // Parses and compiles `source` into a new chunk of `m` (throws CompileError).
    Proto* compile_into(ModuleObj& m, const std::string& source, bool repl,
                        std::unique_ptr<ast::Module>* ast_out = nullptr);
    // `weft check` (and `weft test`): follows the imports of `module` (the file `path`, text
    // `source`) and theirs, each file once (`seen`): 0 when every import names a standard
    // module or a file that exists and compiles, else 2 after reporting the first that does
    // not. Only files the program may import are followed (vm/import_check.cpp).
    int check_imports(const ast::Module& module, const std::string& path, const std::string& source,
                      std::unordered_set<std::string>& seen);
    // Is `name` a standard module (`import name`)?
    bool has_module(const std::string& name);
    // "; util.weft is a file beside prog.weft: import it by its path, ..." when `import name`
    // of an unknown module looks like a file import written as a module name; else "".
    std::string module_name_hint(const std::string& name, const std::string& importer_path);
    int report_compile_error(const CompileError& e, const std::string& source);
    void report_uncaught(const Value& err);
    // An uncaught error's exit status: an exit()'s code, else 1 after printing the traceback.
    int report_uncaught_status(const Value& err);
    int run_main(ModuleObj* m, const std::string& source);

    VmOptions options_;
    std::atomic<size_t> recursion_limit_{0};  // options_.max_depth, then set_recursion_limit
    std::shared_ptr<SourceFiles> sources_;  // this program's own source files
    std::shared_ptr<const CapabilitySet> program_caps_;
    StructTypeObj* error_types_[size_t(ErrorKind::Count)] = {};
    std::mutex modules_mu_;  // imports from tasks on several threads
    std::unordered_map<std::string, ModuleObj*> modules_;  // by name, or by canonical path
    std::unique_ptr<Interp> main_;
    std::unique_ptr<RunStats> stats_;  // --stats: before runtime_, which calls into it
    std::shared_ptr<rt::Runtime> runtime_;  // options_.shared_runtime, or the Vm's own
    std::mutex pool_mu_;
    std::vector<std::unique_ptr<Interp>> pool_;
    ModuleObj* repl_module_ = nullptr;
    // Runs `fn` as the root task of the runtime (created on first use).
    void in_runtime(const std::function<void()>& fn);
    // The runtime, started if it is not yet (the host's shared one, else the Vm's own with
    // its workers); runs no task.
    void start_runtime();
    // `fn` as the main task, a root of the runtime: the program's actors hang off it and
    // interrupt_main() cancels it.
    void run_main_root(const std::function<void()>& fn);
    std::mutex main_task_mu_;  // main_task_ against interrupt_main()
    rt::Task* main_task_ = nullptr;  // the root task while in_runtime runs one
    bool interrupted_ = false;        // interrupt_main() cancelled it (under main_task_mu_)
    std::mutex out_mu_;  // print() from tasks on several threads
    std::string out_buf_;
    bool out_line_buffered_ = false;  // see write_stdout
    // Per-program state that used to be process-wide (several Vms may live in one process: the
    // embedding API's Engines). The root task's context (bind_main_task), the limits of
    // vm/limits.h, and values the standard library keeps per program (extension_value).
    TaskContext main_context_;
    std::unique_ptr<limits::State> limits_;
    std::mutex ext_mu_;
    std::unordered_map<std::string, Value> ext_values_;
    std::unordered_map<std::string, std::function<void(ModuleObj&)>> host_modules_;  // modules_mu_
    ModuleObj* embed_main_ = nullptr;  // modules_mu_
    std::mutex embed_compile_mu_;      // run_in_main: one compile into the main module at a time

public:
    TaskContext& main_context() { return main_context_; }
    limits::State& limits_state() { return *limits_; }
    // A value a native module keeps for the whole program (e.g. "http.HTTPError", the type it
    // raises); set when the module is built, read when it raises. Thread-safe. Unset: None.
    void set_extension_value(const std::string& key, Value v);
    Value extension_value(const std::string& key);

    // ---- Embedding (embed/, include/weft/weft.hpp; implemented in vm/vm_embed.cpp). Every host
    // call is a root task of its own, on a pooled interpreter, so host threads may call one Vm
    // concurrently.
    struct RootResult {
        Value value;                   // the result, or the error value when !ok
        bool ok = true;
        bool scope_cancelled = false;  // the call's own cancel scope was cancelled (interrupt/limit)
        std::exception_ptr compile_error;  // a CompileError (exec/eval of bad source)
    };
    // The call itself, run on the root task's interpreter.
    using RootBody = std::function<Value(::weft::Interp&)>;
    // Called in the root task with the call's cancel scope once it is open (register it to
    // cancel the call from another thread) and with nullptr when it closes.
    using ScopeHook = std::function<void(rt::CancelScope*)>;
    // Runs `body` as a root task with capabilities `caps` inside a cancel scope (`deadline_ns`:
    // steady-clock ns, INT64_MAX for none) and the implicit nursery, and blocks the calling
    // (non-worker) thread until the whole task tree has ended. Never throws Weft errors.
    // `budget` (may be null): the call's step and output limits, shared by its tasks.
    RootResult run_root(const RootBody& body, std::shared_ptr<const CapabilitySet> caps,
                        std::int64_t deadline_ns, const ScopeHook& hook, const std::string& name,
                        CallBudget* budget = nullptr);
    // The same started without blocking; `done` runs on a worker when the call has ended.
    rt::TaskRef start_root(RootBody body, std::shared_ptr<const CapabilitySet> caps,
                           std::int64_t deadline_ns, ScopeHook hook, const std::string& name,
                           std::function<void(RootResult&)> done, CallBudget* budget = nullptr);
    // The runtime (created on first use; call once before using the Vm from several threads).
    rt::Runtime& runtime();
    // The module exec/eval/call/global work in ("__main__"), made on first use.
    ModuleObj* embed_main_module();
    // A copy of its global layout, taken while no exec compiles into it (Engine::check).
    GlobalLayout embed_main_layout();
    // The main module's global `name` into `out` (false if it has none), read while no exec
    // compiles into it: a call by name on one thread while another thread's exec adds names.
    bool find_in_embed_main(const std::string& name, Value& out);
    // Global `name` of the module imported as `module` (an import name: "config", "util") into
    // `out`. Returns 1 when found, 0 when the module has no such name (or is still running its
    // top level), -1 when no script of this Vm imported that module.
    int find_in_module(const std::string& module, const std::string& name, Value& out);
    // Compiles `source` REPL-style into the main module (top-level expression statements give
    // their value instead of printing it) and runs it on `in`. Returns the last expression
    // statement's value (None if none). Throws CompileError, WeftError.
    Value run_in_main(::weft::Interp& in, const std::string& source, const std::string& name);
    // Adds an importable module built by `init` on first import (`import name`), for this Vm
    // only; found before the standard modules of the same name.
    void add_host_module(const std::string& name, std::function<void(ModuleObj&)> init);
    // ---- Cluster workers (cluster/): compiles `source` into `m` (a new module with `path`
    // set) without running its top level, which never runs on a worker: a shipped function's
    // module globals come from the driver's snapshot instead. Throws CompileError.
    Proto* compile_detached(ModuleObj& m, const std::string& source) { return compile_into(m, source, false); }
};

// The Vm of the code running on this thread: the current task's (through its interpreter), else
// the one a VmScope on this thread names (a host thread inside a Vm entry point), else the Vm
// owning the runtime this thread belongs to (a worker, timer, blocking-pool or reactor thread),
// else nullptr (unit tests of the object library). Never a process-wide "the program".
Vm* current_vm() noexcept;
// Names `vm` as this thread's current Vm for the scope's lifetime (restores the previous one).
class VmScope {
public:
    explicit VmScope(Vm* vm) noexcept;
    ~VmScope();
    VmScope(const VmScope&) = delete;
    VmScope& operator=(const VmScope&) = delete;

private:
    Vm* prev_;
};

// How a frame was entered, which decides where its result goes when it returns.
enum class FrameExit : uint8_t {
    Normal,    // a call in this loop: the result goes to the register below base
    Boundary,  // entered from C++: execute() returns the result
    // A deferred call's record forced by an instruction of the frame below, run as a frame of
    // this loop (Interp::run_record_here): the register below base holds the promise; the
    // result resolves it and the forcing instruction runs again.
    Record,
};

struct Frame {
    FunctionObj* fn;     // borrowed: kept alive by the register below base (Record: by the promise)
    Proto* proto;
    const Instr* pc;     // next instruction (saved when the frame is not running)
    Value* base;
    FrameExit exit;
    // A deferred call of a leaf function run at once (op_CallDefer): an error leaving it does
    // not unwind the caller; it becomes the failed promise of the call (handle_error).
    bool captures = false;
};

// The call-frame stack: a fixed array, so frames never move and pushing is a bounds-free
// store (the depth is checked before). The array is part of the interpreter's mmap'ed region
// (vm/interp.cpp RegionPool), committed by the kernel page by page as frames are pushed: a task blocked a few calls deep costs one page of frames,
// not the whole array (a `new Frame[n]` of the old 8,000-frame limit wrote all 320 KiB of it,
// which was most of what a blocked task cost). Its capacity is fixed when the interpreter is
// made; the limit (the recursion limit) may be anything up to it.
class FrameStack {
public:
    FrameStack() = default;
    FrameStack(const FrameStack&) = delete;
    FrameStack& operator=(const FrameStack&) = delete;
    // Uses `n` frames of zeroed memory at `mem` (owned by the interpreter: its region).
    void attach(Frame* mem, size_t n) {
        data_ = top_ = limit_ = mem;
        capacity_ = n;
    }
    size_t capacity() const { return capacity_; }
    // The frame count at which at_limit() turns true (the interpreter's maximum call depth,
    // at most the capacity): a pointer compare on every call rather than a size computation.
    void set_limit(size_t n) { limit_ = data_ + (n < capacity_ ? n : capacity_); }
    [[gnu::always_inline]] bool at_limit() const { return top_ >= limit_; }
    [[gnu::always_inline]] void push_back(const Frame& f) { new (top_++) Frame(f); }
    [[gnu::always_inline]] void pop_back() { --top_; }
    [[gnu::always_inline]] Frame& back() { return top_[-1]; }
    const Frame& back() const { return top_[-1]; }
    bool empty() const { return top_ == data_; }
    size_t size() const { return size_t(top_ - data_); }
    const Frame* begin() const { return data_; }
    const Frame* end() const { return top_; }

private:
    static_assert(std::is_trivially_copyable_v<Frame> && std::is_trivially_destructible_v<Frame>,
                  "frames are placed in raw memory and dropped without destructors");
    Frame* data_ = nullptr;
    size_t capacity_ = 0;
    Frame* top_ = nullptr;
    Frame* limit_ = nullptr;
};

class Interp final : public CallContext {
public:
    explicit Interp(Vm& vm, size_t stack_values = 0);
    ~Interp() override;

    Vm& vm() { return vm_; }
    // Takes the program's current recursion limit (Vm::recursion_limit) as this interpreter's
    // maximum call depth, capped by the capacity of its frame array. The Vm calls it when it
    // hands the interpreter to a task; set_recursion_limit() on the calling task's.
    void refresh_recursion_limit();
    // An embedding call's narrower depth limit (weft::Limits::max_depth) for the task this
    // interpreter runs; acquire_interp's refresh_recursion_limit restores the Vm's.
    void narrow_depth(size_t n);
    size_t max_depth() const { return max_depth_; }
    // The longest chain of deferred returns (`return f(n + 1)`) that force() follows before
    // RecursionError, and how many of its records a task's body runs itself before it ends
    // (vm/pending.cpp run_leftover_records): the recursion limit up to kMaxReturnChain, a
    // twentieth of it above (Interp::max_chain says why).
    static constexpr size_t kMaxReturnChain = 10000;
    size_t max_chain() const;
    // `obj.name` as a Weft program reads it (a bound method for a method name). Throws
    // WeftError (AttributeError) when there is no such attribute.
    Value attribute(const Value& obj, StrObj* name) { return get_attr(obj, name); }

    // Runs a module's top-level chunk to completion. Throws WeftError.
    void run_module_chunk(ModuleObj* m, Proto* p);

    // CallContext
    Value call(const Value& callee, std::span<const Value> args) override;
    Value call_kw(const Value& callee, std::span<const Value> args, std::span<const KwArg> kw) override;
    // A struct value of type `t` built like the call `t(*pos, **kw)` (fields checked against
    // their annotations; TypeError for a missing or unknown field). Actors build their state
    // with it (vm/actors.cpp).
    Value new_struct(StructTypeObj* t, std::span<const Value> pos, std::span<const KwArg> kw);
    // call_kw for a caller that gives its arguments away (a task body, run once): they are moved
    // into the callee's registers, not copied. For values seen by several threads that is two
    // atomic count updates fewer per argument, on cache lines other workers are touching.
    Value call_taking(const Value& callee, std::span<Value> args, std::span<const KwArg> kw);
    void write_stdout(std::string_view s) override { vm_.write_stdout(s); }
    void flush_stdout() override { vm_.flush_stdout(); }
    std::shared_ptr<const CapabilitySet> capabilities() const override { return caps_; }
    const CapabilitySet* capabilities_raw() const { return caps_.get(); }
    // The deferred calls made on this interpreter and not yet settled, oldest first
    // (promises; vm/pending.h). Only the task running on this interpreter touches it.
    std::vector<Value>& pending() { return pending_; }
    std::vector<std::pair<size_t, const PromiseObj*>>& nested_records() { return nested_records_; }
    // Does the activation at the top of the frame stack own deferred calls? (Each promise
    // records the frame depth of its owning activation; an activation's own records are the
    // newest ones, so the last record tells.) Cheap enough for every return.
    bool top_owns_records() const;
    // May a call be deferred here, or a deferred call run nested here? (No when nested too
    // deep: native nesting, native stack left, task depth.)
    bool defer_allowed() const;
    // The task this interpreter now runs for (CallBody, the main task): the low end of its native
    // stack (rt::current_stack_low()) and its depth in the task tree, so the checks above need no
    // runtime call. Returns the previous binding (to restore); unbind() forgets it (pool).
    struct TaskBinding {
        uintptr_t stack_low = 0;  // 0: unknown, ask the runtime
        int depth = 0;
    };
    TaskBinding bind_task(TaskBinding b) { return std::exchange(binding_, b); }
    void unbind_task() { binding_ = TaskBinding{}; }
    // Withdraws the quick prediction (vm/quick_calls.h) of every function with a call run at
    // once, or a record run in the loop, on this interpreter's stack: the task is about to park
    // or has used up its time slice. The runtime's expose hook calls it (vm/pending.cpp).
    // `parked`: the task parks, which also withdraws the calm prediction.
    void unpredict_quick_calls(bool parked) const;
    // Safepoints this interpreter has passed (loop back-edges, returns), exactly: the work of a
    // record's run, for vm/quick_calls.h.
    uint64_t safepoints_passed() const {
        return safepoint_batches_ * kSafepointBatch + uint64_t(kSafepointBatch - safepoints_left_);
    }
    // Bytes left on the native stack.
    size_t stack_left() const;
    // How many of them are still unstarted records (lets the runtime hooks return at once).
    size_t& unstarted_records() { return unstarted_; }
    // Sequence number of the next deferred call made here (RecordMark / RecordSettle).
    uint64_t& record_seq() { return record_seq_; }
    // List length at which defer_call next drops the records nobody needs (vm/pending.cpp).
    size_t& compact_records_at() { return compact_at_; }
    void set_capabilities(std::shared_ptr<const CapabilitySet> caps) override { caps_ = std::move(caps); }
    bool read_line(std::string& out) override;
    void note_may_wait() override { ++may_wait_; }
    // A join of a calm function's task (force_promise): counted in may_wait_ too, but not held
    // against the calm prediction (vm/quick_calls.h); joining_calm() is true while it waits.
    void note_calm_join() { ++calm_joins_; }
    bool joining_calm() const { return joining_calm_; }
    void set_joining_calm(bool b) { joining_calm_ = b; }

    // The trace of the current call stack, outermost first ("path:line in name").
    std::vector<std::string> current_trace() const;
    // Frames below the floor belong to another task (a deferred call run inline on its
    // forcer's interpreter, vm/tasks.cpp): traces start at the floor.
    size_t frame_count() const { return frames_.size(); }
    size_t trace_floor() const { return trace_floor_; }
    void set_trace_floor(size_t n) { trace_floor_ = n; }
    // Where the innermost frame is (cheap: two pointers; formatted only when needed). Defined
    // in vm/task_context.cpp.
    CodeSite current_site() const;

    // Turns a WeftError into an error value with a trace (kept if it has one).
    Value error_value(WeftError& e);
    // Turns a runtime exception (rt::Cancelled, rt::TimeoutError, rt::ErrorGroup,
    // ...) or any other C++ exception into an error value.
    Value runtime_error_value(std::exception_ptr e);
    // If `v` is a promise, waits for it and replaces it with its value.
    void force(Value& v);

private:
    // Runs frames until the boundary frame pushed by the caller returns.
    Value execute();
    Value run();  // the dispatch loop
    // Finds a handler for `err` in the frames above the current boundary. On
    // success the top frame resumes at the handler; else frames are popped up to
    // and including the boundary and the function returns false.
    bool handle_error(Value& err);

    // An instruction of the top frame found the promise of a deferred call's record in its
    // register `v` and needs the value: when the record can run here (record_callee_here), its
    // callee is pushed as a FrameExit::Record frame of this loop and true is returned (the
    // caller loads the new frame); `len` is the forcing instruction's length in words, read so
    // far (it runs again once the record has its value). Else false: the caller forces `v`.
    // A frame of this loop costs what a plain call costs; force() would nest a second loop.
    [[gnu::noinline]] bool run_record_here(Value& v, int len);
    // GetGlobal's and GetGlobalTop's slow path: `r` (just loaded from slot `slot` of `m`) is
    // the undefined marker (NameError) or, for GetGlobalTop, a promise; a finished deferred
    // call's promise is replaced by its value in `r` and in the slot, when no function reads
    // the slot (only the module's own top-level code, which is running, then touches it).
    [[gnu::noinline]] void global_read_slow(ModuleObj* m, int slot, Value& r);
    // The value of an instruction's operand register `r`, forced if it holds a promise. A
    // deferred call's promise is replaced by its value in the register (later reads cost
    // nothing); a task handle stays where it is (a variable holding one keeps its methods:
    // .done() .id .state ...) and its value is returned through `hold`.
    [[gnu::always_inline]] const Value& value_of(Value& r, Value& hold) {
        if (__builtin_expect(!r.is(ObjType::Promise), 1)) return r;
        return value_of_promise(r, hold);
    }
    const Value& value_of_promise(Value& r, Value& hold);
    // The slow paths of the arithmetic, comparison and test instructions: operands forced with
    // value_of (out of line, so the fast paths keep no locals with destructors).
    [[gnu::noinline]] Value binary_op_forcing(ast::BinaryOp op, Value& x, Value& y);
    [[gnu::noinline]] Value compare_forcing(ast::CmpOp op, Value& x, Value& y);
    [[gnu::noinline]] bool equal_forcing(Value& x, Value& y);
    [[gnu::noinline]] bool truthy_forcing(Value& x);
    [[gnu::noinline]] Value unary_op_forcing(ast::UnaryOp op, Value& x);
    // The Record frame whose base was `base` has popped, with `result` or by `error` (a value).
    void record_frame_done(Value* base, Value&& result, Value&& error);
    // Every kSafepointBatch safepoints: charges the task's budget, and yields the worker or
    // raises Cancelled (rt::checkpoint) when the time slice is over or the task was cancelled.
    // `at_back_edge`: a loop's, not a return (only those offer records to idle workers).
    [[gnu::noinline]] void safepoint_slow(bool at_back_edge);
    void slice_check(CallBudget& budget, rt::Task* t);  // EngineOptions::on_slice

    // Pushes a frame for a Weft function whose arguments are already bound in
    // base[0..]. Checks depth and stack space.
    // `captures`: a deferred leaf call run at once (Frame::captures).
    [[gnu::always_inline]] inline void push_frame(FunctionObj* fn, Value* base, FrameExit exit, bool captures = false) {
        const Chunk* c = fn->proto->chunk;
        if (__builtin_expect(frames_.at_limit() || base + c->nregs + 256 >= stack_end_ ||
                                 c->uses_checkdef, 0)) {
            push_frame_slow(fn, base, exit, captures);
            return;
        }
        frames_.push_back(Frame{fn, fn->proto, c->code.data(), base, exit, captures});
    }
    void push_frame_slow(FunctionObj* fn, Value* base, FrameExit exit, bool captures);
    [[gnu::always_inline]] inline void pop_frame() {
        Frame& f = frames_.back();
        Value* r = f.base;
        for (int n = f.proto->chunk->nregs; n > 0; --n, ++r) r->clear();
        frames_.pop_back();
    }
    Value* stack_top() const;

    // Binds positional and keyword arguments to a function's parameter
    // registers starting at dst (arguments are copied first, so they may alias dst).
    // `take`: the caller gives `pos` away (moved when they bind one to one).
    void bind_args(FunctionObj* fn, Value* dst, std::span<const Value> pos, std::span<const KwArg> kw,
                   bool take = false);
    Value enter_call(const Value& callee, std::span<const Value> args, std::span<const KwArg> kw, bool take);
    // Calls any callable (not a Weft function frame in this loop): natives,
    // struct constructors, types, bound methods -> result.
    Value call_object(const Value& callee, std::span<const Value> pos, std::span<const KwArg> kw);
    Value call_native(NativeObj* n, std::span<const Value> pos, std::span<const KwArg> kw);
    // call_object's path for a type (`type(x)`, `int(x)`) given promises: forces them first.
    Value call_type_forcing(const TypeObj* t, std::span<const Value> pos, std::span<const KwArg> kw);

    Value get_attr(const Value& obj, StrObj* name);
    std::string defined_name_hint(const ModuleObj* m, const std::string& n) const;
    void set_attr(Value& obj, StrObj* name, Value v);
    // Method call on a receiver held in place (mutating built-in methods may change it).
    // Returns true when a Weft frame was pushed (the result arrives through Return).
    // `name` is interned (a bytecode constant): method tests compare pointers.
    bool call_method(Value& recv, StrObj* name, Value* a, int nargs, const Constant* kwnames);

    Value make_closure(Proto* parent, FunctionObj* cur, Value* regs, int child, int first);
    Value make_struct_type(Proto* p, Value* regs, int idx, int first);
    Value construct_struct(StructTypeObj* t, std::span<const Value> pos, std::span<const KwArg> kw);

    [[noreturn]] void raise(ErrorKind k, std::string msg);
    void check_type(const Value& v, const Value& type, CheckKind kind, const std::string& name);

    Vm& vm_;
    Value* stack_ = nullptr;
    Value* stack_end_ = nullptr;
    size_t max_depth_ = 0;
    size_t stack_cap_ = 0;
    size_t region_bytes_ = 0;  // the value stack and the frame array (vm/interp.cpp RegionPool)
    FrameStack frames_;
    size_t trace_floor_ = 0;
    int native_depth_ = 0;
    // Deferred calls of leaf functions run at once (not under --trace, where every deferred
    // call is shown as a task).
    bool run_leaves_now_ = true;
    // Safepoints (loop back-edges, returns) are counted down here and charged to the task's
    // budget (rt::Task::should_yield) kSafepointBatch at a time: a decrement and a branch each,
    // where asking the task every time cost seven instructions on every call (fib).
    static constexpr int32_t kSafepointBatch = 64;
    // Operations so far that may wait (natives that do not only compute, methods, calls and
    // iteration of channels and other host objects, joins): how a record ran, for
    // vm/quick_calls.h.
    uint64_t may_wait_ = 0;
    uint64_t calm_joins_ = 0;
    bool joining_calm_ = false;
    int32_t safepoints_left_ = kSafepointBatch;
    uint64_t safepoint_batches_ = 0;
    // weft::EngineOptions::on_slice: when this interpreter's task began its current slice, and
    // when it last passed a safepoint batch (a longer gap than kSliceGapNs means it was parked
    // or in a long native, and a new slice begins).
    std::int64_t slice_start_ns_ = 0;
    std::int64_t slice_seen_ns_ = 0;
    TaskBinding binding_;
    Value* place_ = nullptr;  // P register of the Place* instructions
    // A Place* walk rooted at a global slot other threads may read works on
    // place_hold_ and publishes it to place_module_'s slot at the end (place_done).
    Value place_hold_;
    ModuleObj* place_module_ = nullptr;
    int place_slot_ = 0;
    void place_done();

    std::shared_ptr<const CapabilitySet> caps_;
    std::vector<Value> pending_;
    // Records force_pending runs as nested calls: the frame index of each one's callee (for
    // the "deferred call to f, started at ..." line of current_trace).
    std::vector<std::pair<size_t, const PromiseObj*>> nested_records_;
    size_t unstarted_ = 0;
    uint64_t record_seq_ = 0;
    size_t compact_at_ = 1024;
};

// Helpers shared by the VM's modules.
bool value_matches_type(const Value& v, const Value& type);
std::string type_spec_name(const Value& type);

}  // namespace weft
