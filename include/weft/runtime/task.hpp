// Tasks: the unit of concurrency of the Weft runtime.
//
// A task is a C++ callable plus the bookkeeping to run it concurrently: an id and a name, a
// state, a type-erased result or an error (std::exception_ptr), the tasks waiting to join it, and
// its place in the cancel-scope tree. A task gets a fiber (a stack from the pool) only when a
// worker starts it; a task that is forced (joined) by someone before any worker picks it up runs
// inline on the forcer's stack, with no fiber and no context switch. That is lazy task creation
// (Mohr, Kranz and Halstead, "Lazy Task Creation: A Technique for Increasing the Granularity of
// Parallel Programs", 1990; Cilk's work-first principle).
//
// Ownership: tasks are intrusively reference counted (TaskRef). The scope a task belongs to, the
// run queues and every handle hold references; a task object is freed when the last one goes.
// Thread-safety: every public member may be called from any thread unless noted otherwise.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>

#include "weft/runtime/errors.hpp"
#include "weft/runtime/spin_lock.hpp"

namespace weft::rt {

class Task;
class Scope;

namespace detail {
struct CancelNode;
struct Access;
class RuntimeImpl;
bool should_yield_slow(Task* t, bool offer_work = true) noexcept;

/// Per-fiber switching state; lives inside the task that owns the fiber.
struct FiberState {
    boost::context::fiber self;    // the suspended task fiber (empty while it runs)
    boost::context::fiber caller;  // the worker's scheduler context while the task runs
    void* stack_lo = nullptr;      // lowest usable byte of the stack
    std::size_t stack_size = 0;    // usable bytes
    bool guarded = false;          // has a PROT_NONE guard page below stack_lo
    void* tsan_fiber = nullptr;
    void* asan_fake = nullptr;
    // The C++ runtime's per-thread exception state (__cxa_eh_globals: caught-exception stack and
    // uncaught count) travels with the fiber, so a task may park inside a catch block and resume
    // on another thread.
    void* eh_caught = nullptr;
    unsigned int eh_uncaught = 0;
    // A long sleep hibernates the stack (runtime/scheduler.cpp, hibernate_stack): the used part
    // is copied to `saved` and the stack's pages are given back to the kernel; the copy goes
    // back before the fiber runs again.
    bool hibernate = false;        // set by the task for its next park
    void* saved = nullptr;         // malloc'ed copy of [top - saved_len, top)
    std::size_t saved_len = 0;
};
}  // namespace detail

/// Life cycle of a task as seen from outside (a snapshot; may be stale when read).
enum class TaskState : std::uint8_t {
    Unstarted,  ///< queued, no fiber yet (can still run inline when forced)
    Running,    ///< started: running, runnable or waiting
    Blocked,    ///< started and parked in a wait
    Done,       ///< finished with a result or an error
};

/// A task. Create with `spawn()` / `Scope::spawn()`; refer to it with TaskRef or TaskHandle<T>.
class Task {
  public:
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

    /// Unique (per process) id, starting at 1.
    std::uint64_t id() const noexcept { return id_; }
    /// Name given at spawn (may be empty).
    const std::string& name() const noexcept { return name_; }
    /// "name#id", e.g. "fetch#12" (the language's task id).
    std::string label() const;
    TaskState state() const noexcept;
    bool done() const noexcept { return run_state_.load(std::memory_order_acquire) == kDone; }

    /// Opaque per-task pointer for the embedder (the VM's task context). Not owned.
    /// Thread-safety: any thread may read it (a task snapshot reads other tasks' while they
    /// start); the store is a release and the load an acquire, so what the setter wrote to the
    /// pointed-to object before setting it is visible to a reader that sees the pointer.
    void* user_data() const noexcept { return user_data_.load(std::memory_order_acquire); }
    void set_user_data(void* p) noexcept { user_data_.store(p, std::memory_order_release); }
    /// While this task runs inline on the stack of the task that forced it (lazy task
    /// creation): that task; otherwise nullptr. Only meaningful on the running task itself.
    Task* inline_forcer() const noexcept { return forcer_; }

    /// Waits until the task is done. From a task: parks the caller (cancellable: raises
    /// Cancelled, or Deadlock when the detector fires); if the task is still unstarted it is run
    /// inline right here (lazy task creation). From a plain thread: blocks the thread.
    /// Does not raise the task's error; see `rethrow_error()`. The caller must hold a reference
    /// to the task (a TaskRef or TaskHandle) for the duration of the call.
    void join() { join(true); }
    /// join() that never runs the task inline (`run_inline` false): for a forcer whose own
    /// cancellation must not reach the task (it waits in another cancel scope than the task's).
    void join(bool run_inline);
    /// Like join() but gives up after `seconds`; returns done().
    bool join_for(double seconds);
    /// The task's error after done(), else nullptr.
    std::exception_ptr error() const noexcept { return done() ? error_ : nullptr; }
    /// After done(): rethrows the error if any, and marks it observed (an observed error is not
    /// raised again by the owning scope).
    void rethrow_error();
    /// Marks the error (if any) as handled by someone, so the owning scope does not raise it.
    void mark_observed() noexcept { observed_.store(true, std::memory_order_release); }

    /// Cancels this task: its next checkpoint raises Cancelled (unless shielded). Idempotent.
    void cancel() noexcept;

    /// Cheap safepoint test for loop back-edges: true when the task should call `yield_now()`
    /// / `check_cancelled()` because its time slice (about 10 ms) is used up or it may have been
    /// cancelled. Costs a decrement and a compare on the fast path. Only for the current task.
    bool should_yield() noexcept { return should_yield(1); }

    /// should_yield() for `n` safepoints at once: for a caller that counts its safepoints itself
    /// and asks every `n` of them (the VM: Interp::safepoint_slow). `offer_work`: false keeps the
    /// ExposeReason::IdleWorker hook from running (the VM's returns; see Interp::safepoint_slow).
    bool should_yield(std::int32_t n, bool offer_work = true) noexcept {
        std::int32_t b = budget_.load(std::memory_order_relaxed) - n;
        budget_.store(b, std::memory_order_relaxed);
        return b <= 0 && detail::should_yield_slow(this, offer_work);
    }

    /// Pointer to the result value (type known to the spawner), valid after done() without error.
    virtual void* result_slot() noexcept = 0;

    void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

  protected:
    Task();
    virtual ~Task();
    /// Runs the task's callable and stores its result (exceptions propagate to the runtime).
    virtual void run_body() = 0;

  private:
    friend struct detail::Access;
    static constexpr std::uint8_t kUnstarted = 0, kRunning = 1, kDone = 2;

    std::atomic<std::uint32_t> refs_{1};
    std::atomic<std::uint8_t> run_state_{kUnstarted};
    std::atomic<std::uint8_t> park_state_{0};
    std::atomic<bool> observed_{false};
    std::atomic<bool> self_cancelled_{false};
    std::atomic<bool> ext_join_{false};  // a plain thread waits in join(): notify on completion
    std::atomic<std::int32_t> budget_{0};
    std::atomic<std::uint64_t> wait_word_{0};
    std::uint64_t id_ = 0;
    std::uint64_t seen_epoch_ = 0;
    const char* wait_what_ = nullptr;  // what the task waits on (deadlock reports)
    const void* wait_obj_ = nullptr;
    std::atomic<void*> user_data_{nullptr};
    detail::RuntimeImpl* rt_ = nullptr;
    Task* host_ = nullptr;    // task whose fiber runs this one (itself, or a forcer when inline)
    Task* active_ = nullptr;  // on a host: innermost task running on its fiber
    Task* forcer_ =
        nullptr;  // while run inline: the task that forced it (its cancellation applies)
    detail::CancelNode* cancel_top_ = nullptr;  // innermost open scope of this task
    detail::CancelNode* root_ = nullptr;        // nursery it belongs to (not owned: outlives us)
    detail::CancelNode* implicit_ = nullptr;    // lazily created implicit nursery
    Task* member_prev_ = nullptr;               // nursery membership list
    Task* member_next_ = nullptr;
    bool is_root_ = false;
    bool detached_root_ = false;  // started by Runtime::start_root: leaves roots_ when it ends
    bool implicit_collects_ = false;  // the implicit nursery, when made, is collect-all (LazyScope)
    SpinLock mu_;  // guards root_, joiners_, host_, cancel_top_ changes
    std::vector<std::pair<Task*, std::uint32_t>> joiners_;
    std::exception_ptr error_;
    std::string name_;
    detail::FiberState fiber_;
};

/// Owning, intrusive reference to a Task (like std::shared_ptr, one word).
class TaskRef {
  public:
    TaskRef() = default;
    /// Adopts one reference (does not retain).
    static TaskRef adopt(Task* t) noexcept {
        TaskRef r;
        r.p_ = t;
        return r;
    }
    explicit TaskRef(Task* t) noexcept : p_(t) {
        if (p_) p_->retain();
    }
    TaskRef(const TaskRef& o) noexcept : TaskRef(o.p_) {}
    TaskRef(TaskRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    TaskRef& operator=(TaskRef o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~TaskRef() {
        if (p_) p_->release();
    }
    Task* get() const noexcept { return p_; }
    Task* operator->() const noexcept { return p_; }
    Task& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    Task* detach() noexcept { return std::exchange(p_, nullptr); }

  private:
    Task* p_ = nullptr;
};

namespace detail {
struct Unit {};
template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, Unit, R>;

template <class F, class R>
class TaskImpl final : public Task {
  public:
    // Built from the spawner's callable with one move (or copy), not through a temporary.
    template <class G>
    explicit TaskImpl(G&& g) : fn_(std::forward<G>(g)) {}
    void* result_slot() noexcept override { return result_ ? &*result_ : nullptr; }

  private:
    void run_body() override {
        if constexpr (std::is_void_v<R>) {
            fn_();
            result_.emplace();
        } else {
            result_.emplace(fn_());
        }
    }
    F fn_;
    std::optional<Stored<R>> result_;
};

/// Queues `t` (one reference adopted) as a child of `nursery` (nullptr: the current task's
/// innermost nursery, or its implicit one). Returns a new reference.
/// `wake`: wake an idle worker for it even when it is the only task on the deque.
/// `keep`: false for a caller that keeps no handle: no reference is taken, an empty TaskRef is
/// returned (the task is not touched after it is queued: it may already be running elsewhere).
TaskRef spawn_task(Task* t, std::string_view name, CancelNode* nursery, bool wake = false, bool keep = true);
}  // namespace detail

/// Typed handle to a spawned task: `get()` forces it and returns its value or raises its error.
template <class T>
class TaskHandle {
  public:
    TaskHandle() = default;
    explicit TaskHandle(TaskRef t) : task_(std::move(t)) {}
    Task& task() const noexcept { return *task_; }
    const TaskRef& ref() const& noexcept { return task_; }
    /// From a handle about to go away: its reference moves out (no count update, which would
    /// touch the task's cache line while a thief may already be running it).
    TaskRef ref() && noexcept { return std::move(task_); }
    /// Forces the task (join(), inline if unstarted) then returns its value, or rethrows its
    /// error (marking it observed). Raises Cancelled if the waiting task is cancelled meanwhile.
    decltype(auto) get() {
        task_->join();
        task_->rethrow_error();
        if constexpr (std::is_void_v<T>) {
            return;
        } else {
            return *static_cast<T*>(task_->result_slot());
        }
    }
    void join() { task_->join(); }
    void cancel() noexcept { task_->cancel(); }
    bool done() const noexcept { return task_->done(); }

  private:
    TaskRef task_;
};

/// Spawns `f` (a callable taking no arguments) as a child task of the current task's innermost
/// open nursery (Scope), or of the current task's implicit scope, which is joined when the
/// current task's body returns. Must be called from inside a task. The task is *unstarted*: it
/// sits on this worker's deque and runs when a worker picks it up, or inline when forced first.
template <class F>
auto spawn(F&& f, std::string_view name = {}) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
    return TaskHandle<R>(detail::spawn_task(t, name, nullptr));
}

/// spawn() for a caller that keeps no handle (a `spawn f(x)` statement): the task belongs to the
/// same nursery, which waits for it and raises its error if it fails, but no reference is taken
/// for the caller — two atomic count updates fewer, on a task a thief may already be running.
template <class F>
void spawn_detached(F&& f, std::string_view name = {}) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
    detail::spawn_task(t, name, nullptr, false, false);
}

/// The task running on this thread, or nullptr outside any task. Cheap (a thread-local read).
Task* current_task() noexcept;

// ---------------------------------------------------------------- lazy children of an embedder
//
// An embedder may keep cheap records of work it *could* spawn (the VM's deferred calls) and
// create tasks only when parallelism or blocking makes them worth it (lazy task creation: Mohr,
// Kranz and Halstead, "Lazy Task Creation", 1990). The runtime tells it when that moment comes
// through two hooks, and lets it spawn a record later into the nursery that was innermost when
// the record was made.

/// Why the running task is asked to expose its deferred work.
enum class ExposeReason : std::uint8_t {
    Park,        ///< it is about to park (wait on a channel, a task, a timer, I/O, a scope)
    Yield,       ///< its time slice is used up and it yields its worker
    IdleWorker,  ///< a worker is idle and this worker's deque is empty
};

/// Hooks of the embedder (all optional). Both run on the calling task's own fiber with no
/// runtime lock held; they may spawn tasks (spawn_into) but must not park and must not throw.
struct EmbedderHooks {
    /// Turn deferred work of `cur` (and of the tasks it runs inline for: follow
    /// Task::inline_forcer()) into tasks.
    void (*expose)(Task* cur, ExposeReason why) noexcept = nullptr;
    /// Nursery `n`, owned by `cur`, is about to be waited for: joined, or abandoned while
    /// unwinding (`abandoned`: its tasks are being cancelled). Records made for `n` must become
    /// tasks now or be dropped.
    void (*closing)(Task* cur, detail::CancelNode* n, bool abandoned) noexcept = nullptr;
};
/// Installs the hooks, process-wide. Call before any runtime runs tasks.
void set_embedder_hooks(const EmbedderHooks& hooks) noexcept;

/// The nursery spawn() would use now: the current task's innermost open Scope, else its implicit
/// scope (created here if needed). Call from inside a task. The pointer identifies the nursery
/// for spawn_into() while it is open (a nursery stays open until `closing` has run for it).
detail::CancelNode* current_nursery();
/// Identity of the current task's innermost open scope (cancel scope or nursery), or nullptr:
/// equal values mean "the same cancellation context". Compare only; never dereference.
const void* current_cancel_context() noexcept;
/// True when some worker is parked or looking for work (a relaxed read: a hint).
bool has_idle_worker() noexcept;

/// Spawns `f` into `nursery` (from current_nursery(), still open), from any task of the runtime
/// running on this fiber. A nursery owned by a task other than the caller is allowed; the new
/// task then checks its cancellation afresh instead of inheriting the caller's cached answer.
/// Wakes an idle worker when one is idle (the task is meant to be stolen).
template <class F>
auto spawn_into(detail::CancelNode* nursery, F&& f, std::string_view name = {}) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
    return TaskHandle<R>(detail::spawn_task(t, name, nursery, true));
}

}  // namespace weft::rt
