// The Weft runtime: an M:N scheduler of tasks on fibers over a fixed set of worker threads.
//
// Entry point for embedders: create a Runtime (it starts its workers, timer thread, blocking
// pool and I/O reactor), then call `block_on(fn)` from a plain thread to run `fn` as the root
// task and wait for it. Inside tasks, use the free functions below (yield_now, sleep_for,
// check_cancelled, run_blocking, ...), `spawn()` (task.hpp), scopes (scope.hpp), channels and
// select (channel.hpp) and reactor waits (reactor.hpp). See docs/runtime.md for the design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "weft/runtime/errors.hpp"
#include "weft/runtime/task.hpp"

namespace asio {
class io_context;
}

namespace weft::rt {

/// One blocked task in a deadlock report.
struct BlockedTask {
    std::uint64_t id;
    std::string name;
    std::string waits_on;  ///< e.g. "channel recv", "join of task#7", "scope join"
    std::string where;     ///< where in the program it waits (RuntimeOptions::wait_site), or ""
};

/// One live task in a snapshot (see tasks_snapshot()).
struct TaskSnapshot {
    TaskRef task;               ///< keeps the task (and what its user_data points to) alive
    TaskState state;            ///< Unstarted, Running (running or runnable) or Blocked (parked)
    std::string waits_on;       ///< when Blocked: "channel recv", "join of fetch#12", "sleep", ...
    std::uint64_t parent = 0;   ///< id of the task whose scope owns it; 0 for a root task
};

/// Kinds of trace events (see TraceEvent). Started/Resumed: the task begins/continues running
/// on `worker`; Blocked: it stops running (`what` says why: a wait, or "yield"); Done: finished.
enum class TraceKind : std::uint8_t { Created, Started, Blocked, Resumed, Done };

/// A trace event. `what` is a static string describing a wait (Blocked) or nullptr.
struct TraceEvent {
    TraceKind kind;
    std::uint64_t task_id;
    int worker;            ///< worker index, -1 when not on a worker thread
    std::int64_t time_ns;  ///< steady clock, nanoseconds
    const char* what;
};

/// Counters, summed over workers (approximate while the runtime runs).
struct Counters {
    std::uint64_t spawned = 0;       ///< tasks created
    std::uint64_t inlined = 0;       ///< tasks forced before start and run inline (no fiber)
    std::uint64_t fibers = 0;        ///< tasks started on a fiber
    std::uint64_t switches = 0;      ///< context switches into tasks
    std::uint64_t steals = 0;        ///< tasks stolen from another worker's deque
    std::uint64_t parks = 0;         ///< tasks parked in a wait
    std::uint64_t worker_parks = 0;  ///< worker threads going to sleep for lack of work
};

struct RuntimeOptions {
    /// Worker threads; 0 = std::thread::hardware_concurrency().
    unsigned workers = 0;
    /// Reserved bytes per fiber stack (rounded up to pages); committed lazily by the kernel.
    /// Four times as much under sanitizers, whose instrumented frames are several times larger
    /// (the VM's native-stack checks, such as repr of a value nested 500 deep, assume the
    /// Release frame sizes fit in 256 KiB).
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    std::size_t stack_size = 1024 * 1024;
#else
    std::size_t stack_size = 256 * 1024;
#endif
    /// Time slice in seconds after which `should_yield()` turns true.
    double time_slice = 0.010;
    /// A task that sleeps (`sleep_for`/`sleep_until`) at least this long, with no live child
    /// task, hibernates its stack: the frames it uses are copied to the heap and the stack's
    /// pages are returned to the kernel until it wakes (about 1 KiB instead of 4-8 KiB per
    /// sleeping task; a few microseconds per sleep). Contract: while it sleeps no other task
    /// or thread may touch that task's stack variables (its children may: a task with live
    /// children does not hibernate). 0 turns it off. Never under AddressSanitizer.
    double hibernate_after = 0.010;
    /// Maximum threads of the blocking pool (`run_blocking`).
    unsigned blocking_threads = 64;
    /// Install the process-wide SIGSEGV handler that turns a fiber-stack guard-page hit into a
    /// "stack overflow in task #N" message (and alternate signal stacks on the workers). Faults
    /// that are not guard-page hits are passed to the handler installed before (chained). The
    /// CLI sets it; an embedding host need not (a guard-page overflow is then a plain SIGSEGV).
    /// Never installed under ASan/TSan, which have their own handlers.
    bool install_signal_handlers = false;
    /// Opaque pointer for the embedder, returned by current_embedder_data() on this runtime's
    /// threads (the VM stores its Vm here). Not owned.
    void* embedder_data = nullptr;
    /// Called (on a worker thread) with every blocked task when a deadlock is detected, before
    /// Deadlock is raised in the root task(s). Optional.
    std::function<void(const std::vector<BlockedTask>&)> on_deadlock;
    /// Where a parked task waits, in the embedder's terms ("app.weft:12 in main"), for the
    /// deadlock report (BlockedTask::where). Called on a worker thread while every task is
    /// parked, so it may read the task's own state (its user_data). Optional.
    std::function<std::string(Task*)> wait_site;
    /// Trace hook; when set, called synchronously for every task event (keep it cheap and
    /// thread-safe: it runs on worker threads, inside the scheduler).
    std::function<void(const TraceEvent&)> trace;
};

/// The scheduler, timers, blocking pool and I/O reactor. Thread-safety: all members may be
/// called from any thread. Several runtimes may coexist in one process (tests do this), but a
/// task only ever runs on the runtime that spawned it.
class Runtime {
  public:
    /// Starts the workers, the timer thread, the blocking pool and the reactor thread.
    explicit Runtime(RuntimeOptions options = {});
    /// Calls stop().
    ~Runtime();
    /// Stops and joins every thread of the runtime (idempotent). All block_on calls must have
    /// returned; afterwards only the destructor may be called.
    void stop();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// Runs `f` as a root task named `name` and blocks the calling (non-worker) thread until it
    /// and all tasks it spawned finish. Returns its value or rethrows its error (ErrorGroup when
    /// several children failed; Deadlock when the detector fired).
    template <class F>
    auto block_on(F&& f, std::string_view name = "main") {
        using R = std::invoke_result_t<std::decay_t<F>&>;
        auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
        TaskRef ref = run_root(t, name);
        ref->rethrow_error();
        if constexpr (!std::is_void_v<R>) return std::move(*static_cast<R*>(ref->result_slot()));
    }

    /// block_on(), except that the calling thread runs the root task itself, on the task's own
    /// fiber, for as long as it does not park: a task that never waits (a short call into a
    /// script) costs no cross-thread wake-up. When it parks (a channel, a sleep, a join of a
    /// running child), its waker makes it runnable on a worker as any parked task, and the
    /// caller waits as block_on does. Meanwhile the calling thread counts as a busy worker
    /// (for the deadlock detector), what the task spawns or wakes goes to the injection queue
    /// (the workers take it), and the task never yields its time slice (the thread is the
    /// caller's, not a worker's: nothing else would run on it); cancellation reaches it as usual.
    /// Thread-safety: from any non-worker thread, several at once.
    template <class F>
    auto block_on_here(F&& f, std::string_view name = "main") {
        using R = std::invoke_result_t<std::decay_t<F>&>;
        auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
        TaskRef ref = run_root(t, name, true);
        ref->rethrow_error();
        if constexpr (!std::is_void_v<R>) return std::move(*static_cast<R*>(ref->result_slot()));
    }

    /// Starts `f` as a root task named `name` and returns at once (from any thread, including a
    /// worker): the embedding API's asynchronous calls. Like a block_on root it is a root of the
    /// deadlock detector (Deadlock is delivered to it) and its spawned tasks belong to it; the
    /// caller waits with join()/join_for() on the returned reference (or learns of the end from
    /// `f` itself) and reads the error with rethrow_error(). All such roots must have ended
    /// before stop().
    template <class F>
    TaskRef start_root(F&& f, std::string_view name = "root") {
        using R = std::invoke_result_t<std::decay_t<F>&>;
        auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
        return start_root_task(t, name);
    }

    unsigned workers() const noexcept;
    Counters counters() const noexcept;
    /// Every task currently holding a fiber and parked, with what it waits on.
    std::vector<BlockedTask> blocked_tasks() const;
    /// The reactor's Asio context (runs on the reactor thread). Post only non-blocking work.
    asio::io_context& io_context() noexcept;
    detail::RuntimeImpl& impl() noexcept { return *impl_; }

  private:
    TaskRef run_root(Task* t, std::string_view name, bool here = false);
    TaskRef start_root_task(Task* t, std::string_view name);
    std::unique_ptr<detail::RuntimeImpl> impl_;
};

/// Gives other runnable tasks a turn; the caller stays runnable. Must be called in a task.
void yield_now();
/// Free-function form of Task::should_yield() for the current task (false outside tasks).
bool should_yield() noexcept;
/// Raises Cancelled if the current task is cancelled (and not shielded). A no-op outside tasks.
void check_cancelled();
/// check_cancelled() then yield_now(): what the VM calls when should_yield() is true.
void checkpoint();
/// Parks the current task for `seconds` (>= 0; accurate to about a millisecond). Cancellable.
void sleep_for(double seconds);
/// Parks until the steady-clock instant `deadline_ns` (nanoseconds, see `now_ns()`).
void sleep_until(std::int64_t deadline_ns);
/// Every live task of the current task's runtime (roots, and every task reachable through
/// their scopes), sorted by id. A snapshot built without stopping the world: states may be
/// stale by the time it returns. Empty outside a task. Cost: a walk of the whole task tree.
std::vector<TaskSnapshot> tasks_snapshot();
/// The earliest deadline (steady-clock ns, see now_ns()) of the cancel scopes enclosing the
/// current task, following the task tree up to the first shield; INT64_MAX when none (or
/// outside a task). Lets a caller tell whether a wait is already bounded by a scope.
std::int64_t current_deadline_ns();
/// True on a worker thread of a runtime; false elsewhere, including a host thread running its
/// own root task (Runtime::block_on_here): per-thread caches that must die with the runtime's
/// threads ask this.
bool on_worker_thread() noexcept;
/// RuntimeOptions::embedder_data of the runtime the calling thread belongs to (a worker, the
/// timer thread, a blocking-pool thread or the reactor thread); nullptr on other threads.
void* current_embedder_data() noexcept;
/// Steady (monotonic) clock in nanoseconds.
std::int64_t now_ns() noexcept;
/// Bytes left on the current native stack (the fiber's, or the thread's outside tasks), for
/// turning deep recursion into RecursionError instead of a crash.
std::size_t remaining_stack() noexcept;
/// Lowest usable address of the current native stack (the running fiber's, or the thread's
/// outside tasks): remaining_stack() is the distance of the stack pointer from it. A caller that
/// checks the stack often may keep it while it runs on this fiber (fibers never move).
std::uintptr_t current_stack_low() noexcept;

namespace detail {
void run_blocking_impl(std::function<void()> job);
}

/// Runs `fn` (a blocking call: SQLite, DNS, some file I/O) on the bounded blocking pool and
/// parks the current task until it returns; returns its value or rethrows its exception. If the
/// task is cancelled meanwhile, Cancelled is raised at once and `fn`'s eventual result dropped
/// (`fn` keeps running to completion on the pool: it must own what it touches).
template <class F>
auto run_blocking(F&& fn) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    struct Box {
        std::decay_t<F> fn;
        std::optional<detail::Stored<R>> value;
        std::exception_ptr error;
    };
    auto box = std::make_shared<Box>(Box{std::forward<F>(fn), {}, {}});
    detail::run_blocking_impl([box] {
        try {
            if constexpr (std::is_void_v<R>) {
                box->fn();
                box->value.emplace();
            } else {
                box->value.emplace(box->fn());
            }
        } catch (...) {
            box->error = std::current_exception();
        }
    });
    if (box->error) std::rethrow_exception(box->error);
    if constexpr (!std::is_void_v<R>) return std::move(*box->value);
}

}  // namespace weft::rt
