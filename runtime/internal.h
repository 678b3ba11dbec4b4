// Private core of the runtime: the structures shared by scheduler, scopes, timers, channels,
// blocking pool and reactor. See docs/runtime.md for the design; the short version:
//
//  * A *host* is a task that owns a fiber. Tasks forced inline run on their forcer's host.
//    Everything that parks, wakes and reschedules works on hosts.
//  * A wait is identified by (host, generation). `begin_wait` bumps the generation and marks the
//    wait pending; wakers (channel counterparts, timers, cancellation, join completion, the
//    blocking pool, the reactor) race to *claim* it with one CAS on `wait_word_`, and only the
//    winner reschedules the host. So select gets "at most one case takes effect" and timeouts
//    and cancellation cannot double-wake, without any per-wait heap object.
//  * park/unpark handshake: the task switches to the scheduler first and the worker then marks
//    it Parked; a wake that arrives in between finds it Running and sets Notified, which the
//    worker sees and requeues. No lost wake-ups, no spinning.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "runtime/stack_pool.h"
#include "runtime/work_deque.h"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"
#include "weft/runtime/task.hpp"

namespace weft::rt::detail {

// Wait-word codes (low 32 bits of Task::wait_word_). Values below kWokeFirst are select cases.
constexpr std::uint32_t kWaitPending = 0xFFFFFFFFu;
constexpr std::uint32_t kWokeFirst = 0xFFFFFF00u;
constexpr std::uint32_t kWokeNotify = 0xFFFFFF00u;
constexpr std::uint32_t kWokeCancel = 0xFFFFFF01u;
constexpr std::uint32_t kWokeTimeout = 0xFFFFFF02u;
constexpr std::uint32_t kWokeDeadlock = 0xFFFFFF03u;

// park_state_ values
constexpr std::uint8_t kParkRunning = 0, kParkParked = 1, kParkNotified = 2;

enum class SwitchReason : std::uint8_t { None, Yield, Park, Done };

constexpr std::int32_t kYieldBudget = 1024;

/// A node of the cancel-scope tree: a CancelScope or a Scope (nursery). Reference counted; holds
/// strong references to its parent node and its owner task, so a chain walk never touches freed
/// memory even while scopes close concurrently.
struct CancelNode {
    std::atomic<std::int32_t> refs{1};
    std::atomic<CancelNode*> parent{nullptr};  // enclosing node in the owner task (or null)
    Task* owner = nullptr;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> deadline_hit{false};
    bool shield = false;
    bool nursery = false;
    bool fail_fast = true;
    bool implicit = false;
    std::int64_t deadline_ns = INT64_MAX;
    struct TimerEntry* timer = nullptr;  // guarded by the timer queue's mutex
    // nursery state, guarded by mu
    SpinLock mu;
    Task* members = nullptr;  // intrusive list of member tasks not yet done
    std::size_t live = 0;
    std::vector<std::pair<TaskRef, std::exception_ptr>> errors;
    Task* join_host = nullptr;
    std::uint32_t join_gen = 0;

    void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept;
};

struct TimerEntry {
    std::int64_t when;
    std::uint64_t seq;
    Task* host = nullptr;  // strong ref; wake (host, gen) with kWokeTimeout
    std::uint32_t gen = 0;
    CancelNode* node = nullptr;  // strong ref; cancel this node (deadline)
    std::function<void()> fn;    // or run this (on the timer thread; must not block)
    bool in_set = true;
};

struct TimerLess {
    bool operator()(const TimerEntry* a, const TimerEntry* b) const noexcept {
        return a->when != b->when ? a->when < b->when : a->seq < b->seq;
    }
};

class RuntimeImpl;

struct Worker {
    RuntimeImpl* rt = nullptr;
    int index = 0;
    WorkDeque<Task> deque;
    Task* lifo = nullptr;  // owner-only: the task this worker just woke
    // FIFO of tasks that yielded on this worker (yield_now): its owner runs them after its
    // deque and the global queue, before stealing, as Go runs a Gosched'ed goroutine; other
    // workers take from it when they find nothing else (steal_from_others), so a yielded task
    // never waits here while another core is free. A spin lock of its own, nearly always
    // uncontended, instead of the global queue's mutex that every worker shares.
    SpinLock yield_mu;
    std::deque<Task*> yielded;                  // guarded by yield_mu
    std::atomic<std::size_t> yielded_size{0};   // written under yield_mu, read by anyone
    int lifo_streak = 0;
    std::int64_t lifo_chain_start = 0;
    std::atomic<std::uint32_t> wake_flag{0};
    // A host thread running its own root task (Runtime::block_on_here): not in workers_, never
    // parked, no LIFO slot (what it wakes is injected); its deque holds what the task spawns,
    // which workers steal, and goes to the injection queue when the task leaves the thread.
    bool guest = false;
    std::atomic<bool> guest_busy{false};  // a host thread is using this guest Worker
    bool idle = false;        // guarded by rt->idle_mu_
    Task* current = nullptr;  // innermost task running on this thread
    Task* host = nullptr;     // host whose fiber is running
    SwitchReason reason = SwitchReason::None;
    std::int64_t slice_start = 0;
    std::uint64_t tick = 0;
    std::uint64_t rng = 0x9E3779B97F4A7C15ULL;
    void* tsan_fiber = nullptr;
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void* asan_fake = nullptr;
    void* eh_globals = nullptr;  // this thread's __cxa_eh_globals
    std::vector<Stack> stack_cache;
    std::thread thread;
    // counters (owner writes, anyone reads)
    std::atomic<std::uint64_t> c_spawned{0}, c_inlined{0}, c_fibers{0}, c_switches{0}, c_steals{0},
        c_parks{0}, c_worker_parks{0};

    std::uint64_t next_random() noexcept {  // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return rng * 2685821657736338717ULL;
    }
};

inline void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

/// Gives the runtime access to Task's private members.
struct Access {
    static auto& run_state(Task* t) { return t->run_state_; }
    static auto& park_state(Task* t) { return t->park_state_; }
    static auto& observed(Task* t) { return t->observed_; }
    static auto& self_cancelled(Task* t) { return t->self_cancelled_; }
    static auto& ext_join(Task* t) { return t->ext_join_; }
    static auto& budget(Task* t) { return t->budget_; }
    static auto& wait_word(Task* t) { return t->wait_word_; }
    static auto& id(Task* t) { return t->id_; }
    static auto& seen_epoch(Task* t) { return t->seen_epoch_; }
    static auto& wait_what(Task* t) { return t->wait_what_; }
    static auto& wait_obj(Task* t) { return t->wait_obj_; }
    static auto& rt(Task* t) { return t->rt_; }
    static auto& host(Task* t) { return t->host_; }
    static auto& active(Task* t) { return t->active_; }
    static auto& forcer(Task* t) { return t->forcer_; }
    static auto& cancel_top(Task* t) { return t->cancel_top_; }
    static auto& root(Task* t) { return t->root_; }
    static auto& implicit(Task* t) { return t->implicit_; }
    static auto& implicit_collects(Task* t) { return t->implicit_collects_; }
    static auto& member_prev(Task* t) { return t->member_prev_; }
    static auto& member_next(Task* t) { return t->member_next_; }
    static auto& is_root(Task* t) { return t->is_root_; }
    static auto& detached_root(Task* t) { return t->detached_root_; }
    static auto& mu(Task* t) { return t->mu_; }
    static auto& joiners(Task* t) { return t->joiners_; }
    static auto& error(Task* t) { return t->error_; }
    static auto& name(Task* t) { return t->name_; }
    static auto& fiber(Task* t) { return t->fiber_; }
    static void run_body(Task* t) { t->run_body(); }
    static constexpr std::uint8_t kUnstarted = Task::kUnstarted;
    static constexpr std::uint8_t kRunning = Task::kRunning;
    static constexpr std::uint8_t kDone = Task::kDone;
};
using A = Access;

class TimerQueue {
  public:
    explicit TimerQueue(RuntimeImpl* rt);
    ~TimerQueue();
    void stop();
    /// Wakes (host, gen) with kWokeTimeout at `when`. Returns the entry (for cancel()).
    TimerEntry* add_wake(std::int64_t when, Task* host, std::uint32_t gen);
    /// Cancels `node` at `when`.
    TimerEntry* add_deadline(std::int64_t when, CancelNode* node);
    /// Runs `fn` on the timer thread at `when` (fire and forget; `fn` must not block).
    void add_callback(std::int64_t when, std::function<void()> fn);
    /// Removes an entry that has not fired yet (no-op if it has).
    void cancel(TimerEntry* e);
    /// Entries not yet fired.
    std::size_t pending() const noexcept { return pending_.load(std::memory_order_acquire); }

  private:
    TimerEntry* add(TimerEntry* e);
    void run();
    RuntimeImpl* rt_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::set<TimerEntry*, TimerLess> set_;
    std::uint64_t seq_ = 0;
    std::atomic<std::size_t> pending_{0};
    bool stop_ = false;
    std::thread thread_;
};

class BlockingPool {
  public:
    BlockingPool(RuntimeImpl* rt, unsigned max_threads);
    ~BlockingPool();
    /// Queues `job` and counts it as a pending waker until `finish_one()` is called for it
    /// (by the job itself once its waiter is woken, or by a waiter that gave up on it).
    void submit(std::function<void()> job);
    /// Uncounts one submitted job and lets the deadlock detector look again. Thread-safe.
    void finish_one();
    std::size_t active() const noexcept { return active_.load(std::memory_order_acquire); }

  private:
    void run();
    RuntimeImpl* rt_;
    unsigned max_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    unsigned idle_ = 0;
    bool stop_ = false;
    std::atomic<std::size_t> active_{0};
};

class Reactor;

class RuntimeImpl {
  public:
    explicit RuntimeImpl(RuntimeOptions options);
    ~RuntimeImpl();

    // --- scheduling ---
    /// Makes host `t` runnable (one reference transferred). From a worker of this runtime: into
    /// its LIFO slot; else into the injection queue.
    void schedule(Task* t);
    /// Queues a new unstarted task on the current worker's deque (or injects it).
    void push_new(Task* t);
    void inject(Task* t);
    /// Whether a task other than the caller's could run now on worker `w` (its LIFO slot, its
    /// yield FIFO, the global queue) or be stolen from any deque. Called by `w`'s owner.
    bool has_other_work(const Worker* w) const noexcept;
    /// Wakes one parked worker if any is parked and none is searching (full fence first).
    void notify_one();
    /// notify_one() for pushes onto the caller's own deque (no fence; see scheduler.cpp).
    void notify_local();
    void wake_idle_worker();
    /// The worker's LIFO task if the hand-off chain may continue (time slice), else nullptr.
    Task* take_lifo(Worker* w);
    /// take_lifo() for a direct fiber-to-fiber hand-off (only started tasks; not every tick).
    Task* take_handoff(Worker* w);
    /// Completes a park after the task's fiber is off the CPU (Parked, or requeue if notified).
    void complete_park(Worker* w, Task* t);
    Worker* find_worker_for_this_thread() noexcept;
    /// A free guest Worker for the calling host thread (made on first use), or nullptr when
    /// kGuestSlots host threads are already running calls.
    Worker* acquire_guest();
    /// Runs root task `t` (unstarted; one reference transferred) on the calling non-worker
    /// thread with guest Worker `g` (acquire_guest), until it finishes (true) or parks (false:
    /// its waker schedules it onto a worker like any parked task); gives `g` back. See
    /// Runtime::block_on_here.
    bool run_as_guest(Task* t, Worker* g);

    // --- deadlock detection ---
    std::vector<BlockedTask> blocked_tasks();
    void check_deadlock(Worker* w);
    /// Called by a waker (timer thread, blocking pool, reactor) right after it lowered its
    /// pending counter. If every worker is parked, their last deadlock check saw the counter
    /// still up and said "not yet", and nothing else would make them look again (a timer that
    /// fired into a channel no one reads, a wake that came before the decrement): one worker
    /// is woken to look again. Thread-safe; a load and a fence when some worker is busy.
    void waker_done();

    void trace(TraceKind k, Task* t, const char* what = nullptr);
    bool tracing() const noexcept { return static_cast<bool>(options_.trace); }

    RuntimeOptions options_;
    std::int64_t slice_ns_;
    std::int64_t hibernate_ns_;  // options_.hibernate_after; INT64_MAX: never
    std::vector<std::unique_ptr<Worker>> workers_;
    StackPool stacks_;
    std::atomic<std::uint64_t> cancel_epoch_{1};
    std::atomic<std::int64_t> io_waits_{0};  // reactor waits pending
    // Oneshot waits parked on a completion another thread may still deliver (oneshot.cpp)
    std::atomic<std::int64_t> external_waits_{0};
    // Host threads running a root task as guests (run_as_guest): busy like a worker for the
    // deadlock detector. A worker that found every other thread quiet and some task parked
    // while a guest ran sets guest_deferred_check_, and the guest makes a worker look again
    // when it leaves (a Dekker pair: flag then count on one side, count then flag on the other).
    std::atomic<int> guests_{0};
    std::atomic<bool> guest_deferred_check_{false};
    // Guest Workers, made on first use and freed with the runtime (stealers may look at any of
    // them at any time): guest_made_ entries of guest_ws_ are valid.
    static constexpr int kGuestSlots = 16;
    std::mutex guest_mu_;
    std::atomic<Worker*> guest_ws_[kGuestSlots] = {};
    std::atomic<int> guest_made_{0};

    // injection queue
    std::mutex inject_mu_;
    std::deque<Task*> inject_;
    std::atomic<std::size_t> inject_size_{0};

    // idle workers
    std::mutex idle_mu_;
    std::vector<Worker*> idle_;
    std::atomic<int> num_idle_{0};
    std::atomic<int> num_searching_{0};
    std::atomic<bool> stopping_{false};

    // roots (block_on tasks), for deadlock delivery
    std::mutex roots_mu_;
    std::vector<Task*> roots_;
    std::string deadlock_report_;

    std::unique_ptr<TimerQueue> timers_;
    std::unique_ptr<BlockingPool> blocking_;
    std::unique_ptr<Reactor> reactor_;

  private:
    void worker_main(Worker* w);
    Task* find_task(Worker* w);
    Task* steal_from_others(Worker* w);
    Task* pop_inject();
    /// Takes the oldest task of `v`'s yield FIFO (any thread).
    Task* pop_yielded(Worker* v);
    bool has_visible_work() const noexcept;
    void park_worker(Worker* w);
    void execute(Worker* w, Task* t);
    void start_fiber(Worker* w, Task* t);
    boost::context::fiber switch_into(Worker* w, Task* t, FiberState& fs);
    void after_switch(Worker* w, Task* t);
};

// --- fiber-side primitives (call only from inside a task) ---

/// The worker running this thread (nullptr if none). Not inlined: fibers migrate between
/// threads and the compiler must not cache a thread-local address across a switch.
Worker* current_worker() noexcept;
/// Current innermost task (nullptr outside tasks).
Task* current() noexcept;
/// Marks this thread as one of `rt`'s own (timer, blocking pool, reactor; workers are known by
/// their Worker) for current_embedder_data().
void set_thread_runtime(RuntimeImpl* rt) noexcept;

/// Starts a wait on the current task's host; returns its generation.
std::uint32_t begin_wait(Task* host, const char* what, const void* obj = nullptr) noexcept;
/// The embedder's hooks (set_embedder_hooks); empty unless an embedder keeps lazy children.
extern EmbedderHooks g_hooks;
/// Claims (host, gen) with `code`; true if this caller won (then it must call schedule_claimed).
bool try_claim(Task* host, std::uint32_t gen, std::uint32_t code) noexcept;
/// After a successful try_claim by someone other than the waiter: makes the host runnable.
void wake_claimed(Task* host) noexcept;
/// try_claim + wake_claimed.
bool try_wake(Task* host, std::uint32_t gen, std::uint32_t code) noexcept;
/// Parks until the wait (host, gen) is claimed, checking cancellation first; returns the code.
/// If `cancellable` and the current task is already cancelled, self-claims kWokeCancel.
std::uint32_t wait_for_claim(Task* cur, Task* host, std::uint32_t gen, bool cancellable = true);
/// Switches from the current fiber to the scheduler.
void switch_out(Task* host, SwitchReason r);

// --- cancellation ---
bool is_cancelled(Task* cur);
void cancel_node(CancelNode* n);
void deliver_cancel_to_task(Task* t);
CancelNode* open_node(Task* cur, bool nursery, bool shield, std::int64_t deadline_ns);
// Appends the nurseries `t` has open (its own scopes, innermost first; references taken) and
// returns its host, both read under t's lock.
Task* owned_nurseries(Task* t, std::vector<CancelNode*>& out);
void close_node(Task* cur, CancelNode* n);
/// `cur`'s implicit nursery, made on first use below all its open scopes (collect-all when a
/// LazyScope asked for it, else fail-fast).
CancelNode* implicit_nursery(Task* cur);
/// Waits until the nursery has no live members; returns true if a Deadlock was delivered.
bool nursery_wait(Task* cur, CancelNode* n);
/// Collects unobserved errors of a nursery (after nursery_wait).
std::vector<std::exception_ptr> nursery_errors(CancelNode* n);
/// Runs a task's body to completion on the current stack, then completes it.
void task_main(Task* t);
void run_inline(Task* cur, Task* child);
std::int64_t deadline_from(double seconds) noexcept;
std::string deadlock_report(RuntimeImpl* rt);

}  // namespace weft::rt::detail
