// Scheduler: workers, run queues, stealing, parking, fibers, and the park/wake handshake.
//
// Each worker owns a Chase-Lev deque of runnable tasks plus a one-task LIFO slot that holds the
// task it most recently woke (the message-passing fast path: a sender wakes the receiver, then
// blocks, and the receiver runs next on the same core with a warm cache). Other threads (the
// timer thread, the blocking pool, the reactor, block_on callers) inject into one global queue.
// A worker looks in its LIFO slot, its deque, the global queue (first, every 61st tick, so the
// global queue cannot starve), then steals from a random victim; with nothing found it parks on
// a futex (std::atomic::wait). A producer wakes at most one parked worker, and only if no worker
// is already searching; a searcher that finds work wakes the next one (Tokio's scheme), so
// wake-ups do not stampede. A worker announces itself idle before its final re-check of the
// queues; together with the producer's fence this rules out lost wake-ups (Dekker). Pushes onto
// a worker's own deque skip the fence: a missed wake-up there only costs parallelism, since the
// owner drains its deque before it parks.
//
// Fibers: a task gets a Boost.Context fiber and a pooled stack when a worker first runs it.
// A task switches back to its worker's scheduler context to yield, park or finish; the worker
// then completes the transition on its own stack (marks the task Parked, requeues it, or frees
// its stack), which is why a wake can never resume a fiber that is still running. The exception
// is the direct hand-off (hand_off below): a parking task whose worker holds a woken task in its
// LIFO slot switches straight to it and completes its own park on top of that fiber.
//
// A yielding task waits in its worker's yield FIFO (not the global queue), or does not switch at
// all when nothing else could run (yield_now). A task parked in a long sleep hibernates its stack
// (hibernate_stack: its used bytes go to the heap, its pages back to the kernel).
#include <cxxabi.h>
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "runtime/internal.h"
#include "runtime/reactor_impl.h"

#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(WEFT_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace weft::rt {
namespace detail {

namespace {
thread_local Worker* tl_worker = nullptr;
thread_local RuntimeImpl* tl_runtime = nullptr;  // non-worker threads of a runtime
alignas(64) std::atomic<std::uint64_t> g_next_id{1};  // a cache line of its own

struct NoopStackAlloc {
    boost::context::stack_context allocate() { return {}; }
    void deallocate(boost::context::stack_context&) noexcept {}
};

// Task ids come from one global counter, so they are small and in creation order (`fetch#12`,
// spec section 6): users read them in traces and error messages. One relaxed fetch_add per
// task; against per-thread blocks of ids, skynet with spawn (1.1 M tasks, two workers) took
// about 4% longer (BENCHMARKS.md, sixth session), accepted for ids people can follow.
std::uint64_t next_task_id() noexcept { return g_next_id.fetch_add(1, std::memory_order_relaxed); }

bool is_cancelled_error(const std::exception_ptr& e) {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const Cancelled&) {
        return true;
    } catch (...) {
        return false;
    }
}
}  // namespace

// A full fence (Dekker-style handshakes between producers and parking workers). TSan does not
// model fences; there the neighbouring seq_cst accesses carry the ordering it checks.
inline void full_fence() noexcept {
#if !defined(WEFT_TSAN)
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Layout of libsupc++'s __cxa_eh_globals (stable Itanium C++ ABI).
struct EhGlobals {
    void* caught;
    unsigned int uncaught;
};

// Not inlined and not const (cxxabi.h declares __cxa_get_globals const, which would let the
// compiler reuse the previous thread's pointer across a fiber switch).
__attribute__((noinline)) EhGlobals* eh_globals() noexcept {
    asm volatile("" ::: "memory");
    return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
}

__attribute__((noinline)) Worker* current_worker() noexcept {
    Worker* w = tl_worker;
    asm volatile("" ::: "memory");
    return w;
}

void set_thread_runtime(RuntimeImpl* rt) noexcept {
    tl_runtime = rt;
}

__attribute__((noinline)) Task* current() noexcept {
    Worker* w = tl_worker;
    return w ? w->current : nullptr;
}

// ---------------------------------------------------------------- park / wake

std::uint32_t begin_wait(Task* host, const char* what, const void* obj) noexcept {
    A::park_state(host).store(kParkRunning, std::memory_order_relaxed);
    std::uint64_t w = A::wait_word(host).load(std::memory_order_relaxed);
    std::uint32_t gen = static_cast<std::uint32_t>(w >> 32) + 1;
    A::wait_what(host) = what;
    A::wait_obj(host) = obj;
    A::wait_word(host).store((std::uint64_t(gen) << 32) | kWaitPending, std::memory_order_release);
    return gen;
}

bool try_claim(Task* host, std::uint32_t gen, std::uint32_t code) noexcept {
    std::uint64_t expected = (std::uint64_t(gen) << 32) | kWaitPending;
    return A::wait_word(host).compare_exchange_strong(expected, (std::uint64_t(gen) << 32) | code,
                                                      std::memory_order_acq_rel,
                                                      std::memory_order_relaxed);
}

void wake_claimed(Task* host) noexcept {
    std::uint8_t prev = A::park_state(host).exchange(kParkNotified, std::memory_order_acq_rel);
    if (prev == kParkParked) {
        A::rt(host)->schedule(host);
    }
}

bool try_wake(Task* host, std::uint32_t gen, std::uint32_t code) noexcept {
    if (!try_claim(host, gen, code)) return false;
    wake_claimed(host);
    return true;
}

// ---------------------------------------------------------------- hibernating stacks
//
// A task parked in a long sleep keeps nothing but its stack's used part: the frames from the
// saved stack pointer up to the top are copied to the heap and every page of the stack is
// given back (MADV_DONTNEED), including the canary page of an unguarded stack. The copy goes
// back, at the same addresses, before the fiber runs again (frames hold pointers into their own
// stack, so the stack cannot move). A sleeping task then costs its task object, its timer entry
// and the bytes its frames use (about 1 KiB for a C++ task) instead of one to two 4 KiB pages
// (Go's goroutines start with 2 KiB stacks). About 5 us per hibernation (a syscall, a copy,
// two page faults when it wakes), so only sleeps of RuntimeOptions::hibernate_after or more
// do it. Other tasks may hold pointers into a task's stack: its children (structured
// concurrency lets them borrow the parent's locals), so a task with a live child in any
// nursery it or a task it runs inline for owns keeps its stack; anything else touching a
// sleeper's stack breaks the documented contract (RuntimeOptions::hibernate_after).
// Not under AddressSanitizer (the copy would read poisoned stack redzones).

// Whether a task running on `host`'s fiber has a live child (which may use its stack).
static bool has_live_children(Task* host) {
    for (Task* x = A::active(host); x; x = A::forcer(x)) {
        std::lock_guard<SpinLock> lock(A::mu(x));
        for (CancelNode* n = A::cancel_top(x); n; n = n->parent.load(std::memory_order_acquire)) {
            if (n->owner != x) break;
            if (!n->nursery) continue;
            std::lock_guard<SpinLock> nlock(n->mu);
            if (n->live > 0) return true;
        }
    }
    return false;
}

// The saved stack pointer of a suspended fiber: Boost.Context's fiber holds only its
// fcontext_t, which points at the register block the switch pushed on the fiber's stack.
static void* suspended_sp(const boost::context::fiber& f) noexcept {
    static_assert(sizeof(boost::context::fiber) == sizeof(void*));
    void* sp;
    std::memcpy(&sp, &f, sizeof sp);
    return sp;
}

// Out of line and cold: inlined, it tripled complete_park's instructions on every park.
__attribute__((noinline, cold)) static void hibernate_stack(Task* host) noexcept {
    FiberState& fs = A::fiber(host);
    fs.hibernate = false;
#if !defined(WEFT_ASAN)
    if (has_live_children(host)) return;
    char* top = static_cast<char*>(fs.stack_lo) + fs.stack_size;
    char* sp = static_cast<char*>(suspended_sp(fs.self));
    if (!sp || sp < static_cast<char*>(fs.stack_lo) || sp >= top) return;
    std::size_t len = static_cast<std::size_t>(top - sp);
    void* buf = std::malloc(len);
    if (!buf) return;  // keep the pages: nothing is lost but memory
    std::memcpy(buf, sp, len);
    if (madvise(fs.stack_lo, fs.stack_size, MADV_DONTNEED) != 0) {
        std::free(buf);
        return;
    }
    fs.saved = buf;
    fs.saved_len = len;
#endif
}

__attribute__((noinline, cold)) static void wake_stack(FiberState& fs) noexcept {
    char* top = static_cast<char*>(fs.stack_lo) + fs.stack_size;
    std::memcpy(top - fs.saved_len, fs.saved, fs.saved_len);
    std::free(fs.saved);
    fs.saved = nullptr;
    fs.saved_len = 0;
    if (!fs.guarded) *static_cast<std::uint64_t*>(fs.stack_lo) = kStackCanary;
}

// Direct hand-off: a task that parks while its worker's LIFO slot holds a suspended task
// switches straight to that task instead of going through the scheduler (one context switch
// instead of two). The parking task's own transition (store its continuation, mark it Parked)
// runs on top of the resumed fiber via resume_with, i.e. after the parking fiber is off the CPU,
// exactly as the scheduler would have done it. The scheduler's continuation moves along: the
// resumed task inherits it as its caller.
static bool hand_off(Worker* w, Task* host) {
    RuntimeImpl* rt = w->rt;
    Task* next = rt->take_handoff(w);
    if (!next) return false;
    FiberState& fs = A::fiber(host);
    FiberState& nfs = A::fiber(next);
    if (nfs.saved) wake_stack(nfs);
    if (rt->tracing()) rt->trace(TraceKind::Resumed, A::active(next));
    w->host = next;
    w->current = A::active(next);
    w->slice_start = 0;
    A::budget(w->current).store(kYieldBudget, std::memory_order_relaxed);
    bump(w->c_switches);
    set_running_stack(nfs.guarded ? nfs.stack_lo : nullptr, nfs.stack_size, A::id(next));
#if defined(WEFT_ASAN)
    __sanitizer_start_switch_fiber(&fs.asan_fake, nfs.stack_lo, nfs.stack_size);
#endif
#if defined(WEFT_TSAN)
    __tsan_switch_to_fiber(nfs.tsan_fiber, 0);
#endif
    fs.caller = std::move(nfs.self).resume_with(
        [host, w](boost::context::fiber&& prev) -> boost::context::fiber {
            FiberState& hfs = A::fiber(host);
            hfs.self = std::move(prev);
            boost::context::fiber sched = std::move(hfs.caller);
            w->rt->complete_park(w, host);
            return sched;
        });
#if defined(WEFT_ASAN)
    __sanitizer_finish_switch_fiber(fs.asan_fake, nullptr, nullptr);
#endif
    return true;
}

void switch_out(Task* host, SwitchReason r) {
    Worker* w = current_worker();
    FiberState& fs = A::fiber(host);
    auto* g = static_cast<EhGlobals*>(w->eh_globals);
    fs.eh_caught = g->caught;
    fs.eh_uncaught = g->uncaught;
    g->caught = nullptr;
    g->uncaught = 0;
    if (!(r == SwitchReason::Park && w->lifo && hand_off(w, host))) {
        w->reason = r;
#if defined(WEFT_ASAN)
        __sanitizer_start_switch_fiber(&fs.asan_fake, w->stack_bottom, w->stack_size);
#endif
#if defined(WEFT_TSAN)
        __tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
        fs.caller = std::move(fs.caller).resume();
#if defined(WEFT_ASAN)
        __sanitizer_finish_switch_fiber(fs.asan_fake, nullptr, nullptr);
#endif
    }
    g = static_cast<EhGlobals*>(current_worker()->eh_globals);
    g->caught = fs.eh_caught;
    g->uncaught = fs.eh_uncaught;
}

std::uint32_t wait_for_claim(Task* cur, Task* host, std::uint32_t gen, bool cancellable) {
    // Fast path of is_cancelled(): nothing was cancelled since this task last looked.
    bool maybe = A::seen_epoch(cur) != A::rt(cur)->cancel_epoch_.load(std::memory_order_acquire);
    if (cancellable && maybe && is_cancelled(cur)) {
        if (try_claim(host, gen, kWokeCancel)) return kWokeCancel;
    }
    // Already claimed and notified (the waker finished with us): no need to switch.
    if (A::park_state(host).load(std::memory_order_acquire) != kParkNotified) {
        // Deferred work the embedder kept as records must be able to run while we wait.
        if (g_hooks.expose) g_hooks.expose(cur, ExposeReason::Park);
        RuntimeImpl* rt = A::rt(host);
        if (rt->tracing()) rt->trace(TraceKind::Blocked, cur, A::wait_what(host));
        switch_out(host, SwitchReason::Park);
    }
    return static_cast<std::uint32_t>(A::wait_word(host).load(std::memory_order_acquire));
}

// ---------------------------------------------------------------- task bodies

void finish_task(Task* t) {
    RuntimeImpl* rt = A::rt(t);
    std::exception_ptr err = A::error(t);
    bool real_error = err && !is_cancelled_error(err);
    std::vector<std::pair<Task*, std::uint32_t>> joiners;
    CancelNode* root = nullptr;
    Task* join_host = nullptr;
    std::uint32_t join_gen = 0;
    bool fail_now = false;
    if (rt->tracing()) rt->trace(TraceKind::Done, t);  // before anyone can see it done
    if (A::detached_root(t)) {  // a start_root task: the roots list holds no reference
        std::lock_guard<std::mutex> lock(rt->roots_mu_);
        auto it = std::find(rt->roots_.begin(), rt->roots_.end(), t);
        if (it != rt->roots_.end()) rt->roots_.erase(it);
    }
    {
        std::lock_guard<SpinLock> lock(A::mu(t));
        root = A::root(t);
        A::root(t) = nullptr;
        joiners.swap(A::joiners(t));
        A::run_state(t).store(A::kDone, std::memory_order_seq_cst);
        if (root) {
            std::lock_guard<SpinLock> nlock(root->mu);
            Task* p = A::member_prev(t);
            Task* n = A::member_next(t);
            if (p)
                A::member_next(p) = n;
            else
                root->members = n;
            if (n) A::member_prev(n) = p;
            A::member_prev(t) = A::member_next(t) = nullptr;
            root->live--;
            if (real_error) {
                root->errors.emplace_back(TaskRef(t), err);
                fail_now = root->fail_fast && root->errors.size() == 1;
                if (fail_now) root->retain();  // used below, after the unlock
            }
            if (root->live == 0 && root->join_host) {
                join_host = root->join_host;
                join_gen = root->join_gen;
                join_host->retain();
            }
        }
    }
    if (A::ext_join(t).load(std::memory_order_seq_cst)) A::run_state(t).notify_all();
    for (auto& [h, g] : joiners) {
        try_wake(h, g, kWokeNotify);
        h->release();
    }
    if (fail_now) {
        cancel_node(root);
        root->release();
    }
    if (join_host) {
        try_wake(join_host, join_gen, kWokeNotify);
        join_host->release();
    }
}

void task_main(Task* t) {
    RuntimeImpl* rt = A::rt(t);
    if (rt->tracing()) rt->trace(TraceKind::Started, t);
    A::budget(t).store(kYieldBudget, std::memory_order_relaxed);
    try {
        A::run_body(t);
    } catch (...) {
        A::error(t) = std::current_exception();
    }
    if (CancelNode* n = A::implicit(t)) {
        if (A::error(t)) cancel_node(n);
        bool deadlock = nursery_wait(t, n);
        auto errors = nursery_errors(n);
        close_node(t, n);
        A::implicit(t) = nullptr;
        n->release();
        if (!A::error(t)) {
            if (errors.size() == 1)
                A::error(t) = errors[0];
            else if (errors.size() > 1)
                A::error(t) = std::make_exception_ptr(ErrorGroup(errors));
            else if (deadlock)
                A::error(t) = std::make_exception_ptr(Deadlock("deadlock"));
        }
    }
    finish_task(t);
}

void run_inline(Task* cur, Task* child) {
    Task* host = A::host(cur);
    {
        std::lock_guard<SpinLock> lock(A::mu(child));
        A::host(child) = host;
    }
    A::active(host) = child;
    A::forcer(child) = cur;
    Worker* w = current_worker();
    w->current = child;
    bump(w->c_inlined);
    task_main(child);
    {
        std::lock_guard<SpinLock> lock(A::mu(child));
        A::host(child) = nullptr;
    }
    A::forcer(child) = nullptr;
    A::active(host) = cur;
    current_worker()->current = cur;
}

Task* owned_nurseries(Task* t, std::vector<CancelNode*>& out) {
    std::lock_guard<SpinLock> lock(A::mu(t));
    for (CancelNode* x = A::cancel_top(t); x; x = x->parent.load(std::memory_order_acquire)) {
        if (x->owner != t) break;
        if (x->nursery) {
            x->retain();
            out.push_back(x);
        }
    }
    return A::host(t);
}

// The innermost nursery of `cur`: its innermost open Scope, else its implicit scope, inserted
// below all its open scopes on first use.
static CancelNode* innermost_nursery(Task* cur) {
    for (CancelNode* n = A::cancel_top(cur); n; n = n->parent.load(std::memory_order_relaxed)) {
        if (n->nursery) return n;
    }
    return implicit_nursery(cur);
}

CancelNode* implicit_nursery(Task* cur) {
    if (CancelNode* n = A::implicit(cur)) return n;
    CancelNode* n = new CancelNode;
    n->nursery = true;
    n->implicit = true;
    n->fail_fast = !A::implicit_collects(cur);
    n->owner = cur;
    cur->retain();
    std::lock_guard<SpinLock> lock(A::mu(cur));
    CancelNode* x = A::cancel_top(cur);
    if (!x) {
        A::cancel_top(cur) = n;
    } else {
        while (CancelNode* p = x->parent.load(std::memory_order_relaxed))
            x = p;
        n->retain();
        x->parent.store(n, std::memory_order_release);
    }
    A::implicit(cur) = n;
    return n;
}

TaskRef spawn_task(Task* t, std::string_view name, CancelNode* nursery, bool wake, bool keep) {
    Task* cur = current();
    if (!cur) {
        t->release();
        throw std::logic_error("weft::rt::spawn called outside a runtime task");
    }
    RuntimeImpl* rt = A::rt(cur);
    if (!nursery) nursery = innermost_nursery(cur);
    A::id(t) = next_task_id();
    A::rt(t) = rt;
    // The child's cancellation chain (its nursery and up) is part of the spawner's, so the
    // spawner's "nothing cancelled as of epoch E" holds for the child too: it saves every new
    // task a walk up the task tree on its first cancellation check.
    // (Only when the nursery is the spawner's own: a lazy child spawned into a nursery of the
    // task the spawner runs inline for is not on the spawner's chain.)
    if (nursery->owner == cur) {
        if (A::seen_epoch(cur) != rt->cancel_epoch_.load(std::memory_order_acquire)) (void)is_cancelled(cur);
        A::seen_epoch(t) = A::seen_epoch(cur);
    }
    if (!name.empty()) A::name(t) = name;
    // No references for membership: the nursery outlives its members (its scope waits for
    // them), and a member outlives its entry in the list (finish_task unlinks it first).
    A::root(t) = nursery;
    {
        std::lock_guard<SpinLock> lock(nursery->mu);
        A::member_next(t) = nursery->members;
        if (nursery->members) A::member_prev(nursery->members) = t;
        nursery->members = t;
        nursery->live++;
    }
    if (Worker* w = current_worker()) bump(w->c_spawned);
    if (rt->tracing()) rt->trace(TraceKind::Created, t);
    TaskRef ref = keep ? TaskRef(t) : TaskRef();
    rt->push_new(t);
    if (wake) rt->notify_local();
    return ref;
}

EmbedderHooks g_hooks;

// ---------------------------------------------------------------- RuntimeImpl

RuntimeImpl::RuntimeImpl(RuntimeOptions options)
    : options_(std::move(options)), stacks_(options_.stack_size) {
    unsigned n = options_.workers ? options_.workers : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    slice_ns_ = static_cast<std::int64_t>(options_.time_slice * 1e9);
    hibernate_ns_ = options_.hibernate_after > 0 && options_.hibernate_after < 1e9
                        ? static_cast<std::int64_t>(options_.hibernate_after * 1e9)
                        : INT64_MAX;
    if (options_.install_signal_handlers) install_overflow_handler();
    timers_ = std::make_unique<TimerQueue>(this);
    blocking_ = std::make_unique<BlockingPool>(this, options_.blocking_threads);
    reactor_ = std::make_unique<Reactor>(this);
    for (unsigned i = 0; i < n; ++i) {
        auto w = std::make_unique<Worker>();
        w->rt = this;
        w->index = static_cast<int>(i);
        w->rng ^= (i + 1) * 0xD1B54A32D192ED03ULL;
        workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->thread = std::thread([this, wp] { worker_main(wp); });
    }
}

RuntimeImpl::~RuntimeImpl() {
    stopping_.store(true, std::memory_order_seq_cst);
    for (auto& w : workers_) {
        w->wake_flag.store(1, std::memory_order_release);
        w->wake_flag.notify_one();
    }
    for (auto& w : workers_)
        w->thread.join();
    reactor_.reset();
    timers_->stop();
    blocking_.reset();
    timers_.reset();
    for (auto& w : workers_)
        for (auto& s : w->stack_cache)
            stacks_.release(s);
    for (int i = 0; i < guest_made_.load(); ++i) {
        Worker* g = guest_ws_[i].load();
        for (auto& s : g->stack_cache)
            stacks_.release(s);
        delete g;
    }
}

void RuntimeImpl::trace(TraceKind k, Task* t, const char* what) {
    Worker* w = current_worker();
    TraceEvent ev{k, t ? A::id(t) : 0, (w && w->rt == this) ? w->index : -1, now_ns(), what};
    options_.trace(ev);
}

void RuntimeImpl::notify_one() {
    full_fence();
    wake_idle_worker();
}

// After a push onto the calling worker's own deque. No fence: if this racy check misses a worker
// that is just going to sleep, nothing is lost but parallelism, because the owner runs its own
// deque before it ever parks (Go's wakep makes the same trade). Saves an mfence per spawn.
void RuntimeImpl::notify_local() {
    if (num_idle_.load(std::memory_order_relaxed) == 0) return;
    wake_idle_worker();
}

void RuntimeImpl::wake_idle_worker() {
    if (num_idle_.load(std::memory_order_seq_cst) == 0) return;
    if (num_searching_.load(std::memory_order_seq_cst) != 0) return;
    Worker* w = nullptr;
    {
        std::lock_guard<std::mutex> lock(idle_mu_);
        if (idle_.empty()) return;
        w = idle_.back();
        idle_.pop_back();
        w->idle = false;
        num_idle_.fetch_sub(1, std::memory_order_seq_cst);
    }
    w->wake_flag.store(1, std::memory_order_release);
    w->wake_flag.notify_one();
}

void RuntimeImpl::inject(Task* t) {
    {
        std::lock_guard<std::mutex> lock(inject_mu_);
        inject_.push_back(t);
        inject_size_.fetch_add(1, std::memory_order_release);
    }
    notify_one();
}

Task* RuntimeImpl::pop_inject() {
    if (inject_size_.load(std::memory_order_acquire) == 0) return nullptr;
    std::lock_guard<std::mutex> lock(inject_mu_);
    if (inject_.empty()) return nullptr;
    Task* t = inject_.front();
    inject_.pop_front();
    inject_size_.fetch_sub(1, std::memory_order_release);
    return t;
}

void RuntimeImpl::schedule(Task* t) {
    Worker* w = current_worker();
    if (w && w->rt == this && !w->guest) {
        if (w->lifo) {
            w->deque.push(w->lifo);
            notify_local();
        }
        w->lifo = t;
    } else {
        inject(t);
    }
}

void RuntimeImpl::push_new(Task* t) {
    Worker* w = current_worker();
    if (w && w->rt == this) {  // a worker or a guest (its deque is stolen from too)
        w->deque.push(t);
        // A lone new task is most often forced by its spawner a moment later (a deferred call
        // whose value is used at once) and then runs inline: waking a sleeping worker to steal
        // it would turn a call into a cross-thread hand-off. So a sleeper is woken once there
        // is more than one task to take (a fan-out), and the spawner's own deque is drained
        // by its worker when the spawner parks.
        if (w->deque.size() >= 2) notify_local();
    } else {
        inject(t);
    }
}

bool RuntimeImpl::has_other_work(const Worker* w) const noexcept {
    if (w->lifo || inject_size_.load(std::memory_order_acquire) > 0) return true;
    for (auto& v : workers_)
        if (v->deque.size() > 0 || v->yielded_size.load(std::memory_order_acquire) > 0)
            return true;
    int guests = guest_made_.load(std::memory_order_acquire);
    for (int i = 0; i < guests; ++i)
        if (guest_ws_[i].load(std::memory_order_acquire)->deque.size() > 0) return true;
    return false;
}

bool RuntimeImpl::has_visible_work() const noexcept {
    if (inject_size_.load(std::memory_order_seq_cst) > 0) return true;
    for (auto& w : workers_)
        if (w->deque.size() > 0 || w->yielded_size.load(std::memory_order_seq_cst) > 0)
            return true;
    int guests = guest_made_.load(std::memory_order_seq_cst);
    for (int i = 0; i < guests; ++i)
        if (guest_ws_[i].load(std::memory_order_seq_cst)->deque.size() > 0) return true;
    return false;
}

Task* RuntimeImpl::pop_yielded(Worker* v) {
    if (v->yielded_size.load(std::memory_order_acquire) == 0) return nullptr;
    std::lock_guard<SpinLock> lock(v->yield_mu);
    if (v->yielded.empty()) return nullptr;
    Task* t = v->yielded.front();
    v->yielded.pop_front();
    v->yielded_size.store(v->yielded.size(), std::memory_order_release);
    return t;
}

Task* RuntimeImpl::steal_from_others(Worker* w) {
    // What host threads running their own calls spawned (block_on_here).
    int guests = guest_made_.load(std::memory_order_acquire);
    for (int i = 0; i < guests; ++i) {
        if (Task* t = guest_ws_[i].load(std::memory_order_acquire)->deque.steal()) {
            bump(w->c_steals);
            return t;
        }
    }
    std::size_t n = workers_.size();
    if (n < 2) return nullptr;
    std::size_t start = w->next_random() % n;
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < n; ++i) {
            Worker* v = workers_[(start + i) % n].get();
            if (v == w) continue;
            if (Task* t = v->deque.steal()) {
                bump(w->c_steals);
                return t;
            }
        }
    }
    // Tasks that yielded on a busy worker last: they have had their turn.
    for (std::size_t i = 0; i < n; ++i) {
        Worker* v = workers_[(start + i) % n].get();
        if (v == w) continue;
        if (Task* t = pop_yielded(v)) {
            bump(w->c_steals);
            return t;
        }
    }
    return nullptr;
}

Task* RuntimeImpl::take_lifo(Worker* w) {
    Task* t = w->lifo;
    if (!t) {
        w->lifo_streak = 0;
        w->lifo_chain_start = 0;
        return nullptr;
    }
    w->lifo = nullptr;
    // Tasks handing each other control through the LIFO slot would starve everything else
    // queued here: like Go's runnext, the chain inherits one time slice, after which its task
    // goes through the global queue. The clock is read every 64 hand-offs only.
    if (w->lifo_streak++ == 0) return t;
    if ((w->lifo_streak & 63) != 0) return t;
    std::int64_t now = now_ns();
    if (w->lifo_chain_start == 0) w->lifo_chain_start = now;
    if (now - w->lifo_chain_start < slice_ns_) return t;
    w->lifo_streak = 0;
    w->lifo_chain_start = 0;
    inject(t);
    return nullptr;
}

Task* RuntimeImpl::take_handoff(Worker* w) {
    if (!w->lifo || !A::fiber(w->lifo).self) return nullptr;
    if (++w->tick % 61 == 0) return nullptr;  // let the scheduler look at the global queue
    return take_lifo(w);
}

Task* RuntimeImpl::find_task(Worker* w) {
    ++w->tick;
    if (w->tick % 61 == 0)
        if (Task* t = pop_inject()) return t;
    if (Task* t = take_lifo(w)) return t;
    if (Task* t = w->deque.pop()) return t;
    if (Task* t = pop_inject()) return t;
    if (Task* t = pop_yielded(w)) return t;
    num_searching_.fetch_add(1, std::memory_order_seq_cst);
    Task* t = steal_from_others(w);
    if (!t) t = pop_inject();
    if (num_searching_.fetch_sub(1, std::memory_order_seq_cst) == 1 && t) notify_one();
    return t;
}

void RuntimeImpl::park_worker(Worker* w) {
    {
        std::lock_guard<std::mutex> lock(idle_mu_);
        idle_.push_back(w);
        w->idle = true;
        num_idle_.fetch_add(1, std::memory_order_seq_cst);
    }
    full_fence();
    if (!has_visible_work() && !stopping_.load() &&
        num_idle_.load(std::memory_order_seq_cst) == static_cast<int>(workers_.size()))
        check_deadlock(w);  // may wake a root task into our LIFO slot
    if (w->lifo || has_visible_work() || stopping_.load()) {
        std::lock_guard<std::mutex> lock(idle_mu_);
        if (w->idle) {
            idle_.erase(std::find(idle_.begin(), idle_.end(), w));
            w->idle = false;
            num_idle_.fetch_sub(1, std::memory_order_seq_cst);
            return;
        }
        // Someone already popped us and set the flag: consume it below.
    }
    bump(w->c_worker_parks);
    while (w->wake_flag.load(std::memory_order_acquire) == 0)
        w->wake_flag.wait(0);
    w->wake_flag.store(0, std::memory_order_relaxed);
}

void RuntimeImpl::start_fiber(Worker* w, Task* t) {
    FiberState& fs = A::fiber(t);
    Stack s;
    if (!w->stack_cache.empty()) {
        s = w->stack_cache.back();
        w->stack_cache.pop_back();
    } else {
        s = stacks_.acquire();
    }
    fs.stack_lo = s.lo;
    fs.stack_size = s.size;
    fs.guarded = s.guarded;
    if (!s.guarded) *static_cast<std::uint64_t*>(s.lo) = kStackCanary;
    {
        std::lock_guard<SpinLock> lock(A::mu(t));
        A::host(t) = t;
    }
    A::active(t) = t;
    bump(w->c_fibers);
#if defined(WEFT_TSAN)
    // Creating a TSan fiber is expensive (milliseconds): reuse the one cached with the stack.
    fs.tsan_fiber = s.tsan_fiber ? s.tsan_fiber : __tsan_create_fiber(0);
#endif
    void* top = static_cast<char*>(s.lo) + s.size;
    boost::context::stack_context sctx;
    sctx.size = s.size;
    sctx.sp = top;
    fs.self = boost::context::fiber(
        std::allocator_arg, boost::context::preallocated(top, s.size, sctx), NoopStackAlloc{},
        [t](boost::context::fiber&& caller) -> boost::context::fiber {
            FiberState& f = A::fiber(t);
            f.caller = std::move(caller);
#if defined(WEFT_ASAN)
            __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
            task_main(t);
            Worker* cw = current_worker();
            cw->reason = SwitchReason::Done;
#if defined(WEFT_ASAN)
            __sanitizer_start_switch_fiber(nullptr, cw->stack_bottom, cw->stack_size);
#endif
#if defined(WEFT_TSAN)
            __tsan_switch_to_fiber(cw->tsan_fiber, 0);
#endif
            return std::move(f.caller);
        });
}

// Runs task `t` (its active fiber `fs`) on worker `w` (a worker thread, or a host thread as a
// guest) until it switches back; returns the fiber that switched back. The per-switch state is
// set here for both callers, the sanitizers told of the stack change.
inline boost::context::fiber RuntimeImpl::switch_into(Worker* w, Task* t, FiberState& fs) {
    w->host = t;
    w->current = A::active(t);
    w->slice_start = 0;  // started lazily at the first budget exhaustion (saves a clock read)
    A::budget(w->current).store(kYieldBudget, std::memory_order_relaxed);
    bump(w->c_switches);
    set_running_stack(fs.guarded ? fs.stack_lo : nullptr, fs.stack_size, A::id(t));
#if defined(WEFT_ASAN)
    __sanitizer_start_switch_fiber(&w->asan_fake, fs.stack_lo, fs.stack_size);
#endif
#if defined(WEFT_TSAN)
    __tsan_switch_to_fiber(fs.tsan_fiber, 0);
#endif
    boost::context::fiber back = std::move(fs.self).resume();
#if defined(WEFT_ASAN)
    __sanitizer_finish_switch_fiber(w->asan_fake, nullptr, nullptr);
#endif
    return back;
}

void RuntimeImpl::execute(Worker* w, Task* t) {
    FiberState& fs = A::fiber(t);
    if (!fs.self) {
        std::uint8_t expected = A::kUnstarted;
        if (!A::run_state(t).compare_exchange_strong(expected, A::kRunning,
                                                     std::memory_order_acq_rel)) {
            t->release();  // it was forced and run inline meanwhile
            return;
        }
        start_fiber(w, t);
    } else {
        if (fs.saved) wake_stack(fs);
        if (tracing()) trace(TraceKind::Resumed, A::active(t));
    }
    boost::context::fiber back = switch_into(w, t, fs);
    // After hand-offs the task coming back may not be `t`.
    Task* bt = w->host;
    A::fiber(bt).self = std::move(back);
    set_running_stack(nullptr, 0, 0);
    w->current = nullptr;
    w->host = nullptr;
    after_switch(w, bt);
}

void RuntimeImpl::complete_park(Worker* w, Task* t) {
    FiberState& fs = A::fiber(t);
    if (!fs.guarded && *static_cast<std::uint64_t*>(fs.stack_lo) != kStackCanary) {
        std::fprintf(stderr, "weft runtime: stack overflow in task #%llu (canary clobbered)\n",
                     static_cast<unsigned long long>(A::id(t)));
        std::abort();
    }
    bump(w->c_parks);
    if (fs.hibernate) hibernate_stack(t);  // before the task can be woken and resumed
    std::uint8_t expected = kParkRunning;
    if (!A::park_state(t).compare_exchange_strong(expected, kParkParked,
                                                  std::memory_order_acq_rel)) {
        // Woken while switching out: run it again soon.
        schedule(t);
    }
}

void RuntimeImpl::after_switch(Worker* w, Task* t) {
    FiberState& fs = A::fiber(t);
    if (!fs.guarded && fs.stack_lo && *static_cast<std::uint64_t*>(fs.stack_lo) != kStackCanary) {
        std::fprintf(stderr, "weft runtime: stack overflow in task #%llu (canary clobbered)\n",
                     static_cast<unsigned long long>(A::id(t)));
        std::abort();
    }
    switch (w->reason) {
        case SwitchReason::Done: {
            Stack s{fs.stack_lo, fs.stack_size, fs.guarded, fs.tsan_fiber};
            fs.tsan_fiber = nullptr;
            fs.stack_lo = nullptr;
            if (w->stack_cache.size() < 64)
                w->stack_cache.push_back(s);
            else
                stacks_.release(s);
            t->release();
            break;
        }
        case SwitchReason::Yield: {
            // Into this worker's yield FIFO. yield_now only switched out because another task
            // is runnable, so with a worker idle there is work for two: wake it (it takes the
            // yielded task from here if nothing else is left by then).
            {
                std::lock_guard<SpinLock> lock(w->yield_mu);
                w->yielded.push_back(t);
                w->yielded_size.store(w->yielded.size(), std::memory_order_release);
            }
            if (num_idle_.load(std::memory_order_relaxed) != 0) notify_one();
            break;
        }
        case SwitchReason::Park:
            complete_park(w, t);
            break;
        case SwitchReason::None:
            break;
    }
    w->reason = SwitchReason::None;
}

void RuntimeImpl::worker_main(Worker* w) {
    tl_worker = w;
    w->eh_globals = eh_globals();  // constant per thread: fetched once
    if (options_.install_signal_handlers) install_alt_stack();
#if defined(WEFT_TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    {
        pthread_attr_t attr;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            void* addr = nullptr;
            std::size_t size = 0;
            pthread_attr_getstack(&attr, &addr, &size);
            w->stack_bottom = addr;
            w->stack_size = size;
            pthread_attr_destroy(&attr);
        }
    }
    for (;;) {
        if (Task* t = find_task(w)) {
            execute(w, t);
            continue;
        }
        if (stopping_.load(std::memory_order_acquire)) break;
        park_worker(w);
    }
    tl_worker = nullptr;
}

Worker* RuntimeImpl::find_worker_for_this_thread() noexcept {
    Worker* w = current_worker();
    return (w && w->rt == this && !w->guest) ? w : nullptr;
}

// The calling host thread runs its root task on a fiber itself, as a worker would (execute and
// after_switch), with a Worker of its own that no other thread sees: no deque to steal from, no
// LIFO slot (what it wakes or spawns is injected), never parked. When the task parks, its
// continuation is left in the task as on any worker and its waker schedules it onto a worker;
// the caller then waits for it as block_on does. A call that never parks costs no cross-thread
// wake-up at all (an Engine::call was two futex wake-ups and two context switches before).
namespace {
// What a guest Worker needs of the host thread running it, looked up at the thread's first call.
struct HostThreadInfo {
    bool known = false;
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void* eh_globals = nullptr;
    // TSan: the guest's scheduler context runs on a TSan fiber of its own, not the thread's. A
    // task fiber that ends records its last function exits (after its switch back) on the
    // context it switches to, a few frames per task: on a worker thread's shadow stack they go
    // unnoticed, on the main thread's (whose start is the start of a mapping) reading the
    // shrunken stack faults. This fiber starts with a cushion of frames and is replaced
    // before it could run out.
    void* tsan_fiber = nullptr;
    unsigned tsan_runs = 0;
};
thread_local HostThreadInfo tl_host;

#if defined(WEFT_TSAN)
extern "C" void __tsan_func_entry(void* call_pc);
constexpr int kTsanCushion = 32768;     // frames; a TSan shadow stack holds 65536
constexpr unsigned kTsanFiberRuns = 2048;  // runs per fiber: a few frames each at most

void* cushioned_tsan_fiber() {
    void* own = __tsan_get_current_fiber();
    void* f = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(f, 0);
    for (int i = 0; i < kTsanCushion; ++i) __tsan_func_entry(__builtin_return_address(0));
    __tsan_switch_to_fiber(own, 0);
    return f;
}
#endif
thread_local int tl_guest_hint = 0;
}  // namespace

Worker* RuntimeImpl::acquire_guest() {
    int made = guest_made_.load(std::memory_order_acquire);
    for (int k = 0; k < made; ++k) {
        int i = (tl_guest_hint + k) % made;
        Worker* g = guest_ws_[i].load(std::memory_order_acquire);
        bool expected = false;
        if (!g->guest_busy.load(std::memory_order_relaxed) &&
            g->guest_busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
            tl_guest_hint = i;
            return g;
        }
    }
    std::lock_guard<std::mutex> lock(guest_mu_);
    int n = guest_made_.load(std::memory_order_relaxed);
    if (n == kGuestSlots) return nullptr;
    auto* g = new Worker;
    g->rt = this;
    g->guest = true;
    g->index = -1;
    g->guest_busy.store(true, std::memory_order_relaxed);
    guest_ws_[n].store(g, std::memory_order_release);
    guest_made_.store(n + 1, std::memory_order_release);
    tl_guest_hint = n;
    return g;
}

bool RuntimeImpl::run_as_guest(Task* t, Worker* w) {
    HostThreadInfo& host = tl_host;
    if (!host.known) {
        host.known = true;
        host.eh_globals = eh_globals();

        pthread_attr_t attr;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            void* addr = nullptr;
            std::size_t size = 0;
            pthread_attr_getstack(&attr, &addr, &size);
            host.stack_bottom = addr;
            host.stack_size = size;
            pthread_attr_destroy(&attr);
        }
    }
    w->eh_globals = host.eh_globals;
    w->stack_bottom = host.stack_bottom;
    w->stack_size = host.stack_size;
    w->reason = SwitchReason::None;
#if defined(WEFT_TSAN)
    if (host.tsan_runs++ % kTsanFiberRuns == 0) {
        void* old = host.tsan_fiber;
        host.tsan_fiber = cushioned_tsan_fiber();
        if (old) __tsan_destroy_fiber(old);
    }
    w->tsan_fiber = host.tsan_fiber;
    void* own_tsan_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(host.tsan_fiber, 0);
#endif
    guests_.fetch_add(1, std::memory_order_seq_cst);
    tl_worker = w;
    // The host may call from inside a catch block: its caught-exception stack is not the task's.
    auto* g = static_cast<EhGlobals*>(w->eh_globals);
    void* host_caught = g->caught;
    unsigned int host_uncaught = g->uncaught;
    g->caught = nullptr;
    g->uncaught = 0;
    A::run_state(t).store(A::kRunning, std::memory_order_release);  // only we hold it yet
    start_fiber(w, t);
    bool finished = false;
    for (bool first = true;; first = false) {
        FiberState& fs = A::fiber(t);
        if (!first) {
            if (fs.saved) wake_stack(fs);
            if (tracing()) trace(TraceKind::Resumed, A::active(t));
        }
        boost::context::fiber back = switch_into(w, t, fs);
        fs.self = std::move(back);  // no hand-offs on a guest (no LIFO slot): it is still t
        set_running_stack(nullptr, 0, 0);
        w->current = nullptr;
        w->host = nullptr;
        if (!fs.guarded && fs.stack_lo && *static_cast<std::uint64_t*>(fs.stack_lo) != kStackCanary) {
            std::fprintf(stderr, "weft runtime: stack overflow in task #%llu (canary clobbered)\n",
                         static_cast<unsigned long long>(A::id(t)));
            std::abort();
        }
        SwitchReason r = w->reason;
        w->reason = SwitchReason::None;
        if (r == SwitchReason::Park) {  // complete_park, except that a wake-up races to us
            bump(w->c_parks);
            if (fs.hibernate) hibernate_stack(t);  // before the task can be woken and resumed
            std::uint8_t expected = kParkRunning;
            if (A::park_state(t).compare_exchange_strong(expected, kParkParked,
                                                         std::memory_order_acq_rel))
                break;  // parked: its waker makes it runnable on a worker
            continue;   // woken while switching out: go on here
        }
        if (r == SwitchReason::Done) {
            // Into the guest's own small cache (it belongs to this runtime), as a worker does.
            Stack st{fs.stack_lo, fs.stack_size, fs.guarded, fs.tsan_fiber};
            if (w->stack_cache.size() < 4)
                w->stack_cache.push_back(st);
            else
                stacks_.release(st);
            fs.tsan_fiber = nullptr;
            fs.stack_lo = nullptr;
            t->release();
            finished = true;
            break;
        }
        inject(t);  // a yield (yield_now does not switch out on a guest): the workers take it
        break;
    }
    g->caught = host_caught;
    g->uncaught = host_uncaught;
    tl_worker = nullptr;
    // What the task spawned and left here goes to the workers (a worker running a task drains
    // its own deque when the task parks; this thread will not).
    bool moved = false;
    {
        std::unique_lock<std::mutex> lock(inject_mu_, std::defer_lock);
        while (Task* x = w->deque.pop()) {
            if (!moved) lock.lock();
            moved = true;
            inject_.push_back(x);
            inject_size_.fetch_add(1, std::memory_order_release);
        }
    }
    if (moved) notify_one();
    w->guest_busy.store(false, std::memory_order_release);
    guests_.fetch_sub(1, std::memory_order_seq_cst);
    // A parked task may be deadlocked with every worker asleep: one of them looks (as it would
    // have when the task parked on it). A finished one only if a worker deferred a check to us.
    if (!finished || (guest_deferred_check_.load(std::memory_order_seq_cst) &&
                      guest_deferred_check_.exchange(false, std::memory_order_seq_cst)))
        waker_done();
#if defined(WEFT_TSAN)
    __tsan_switch_to_fiber(own_tsan_fiber, 0);
#endif
    return finished;
}

// ---------------------------------------------------------------- registry and deadlocks

// Blocked tasks are found by walking the scope tree from the roots: every task is a member of a
// nursery reachable from a block_on root, so no per-task registry (and no lock per spawn) is
// needed for this rare question.
std::vector<BlockedTask> RuntimeImpl::blocked_tasks() {
    std::vector<BlockedTask> out;
    std::vector<Task*> stack;
    {
        std::lock_guard<std::mutex> lock(roots_mu_);
        for (Task* r : roots_) {
            r->retain();
            stack.push_back(r);
        }
    }
    std::vector<CancelNode*> nodes;
    while (!stack.empty()) {
        Task* t = stack.back();
        stack.pop_back();
        nodes.clear();
        Task* host = owned_nurseries(t, nodes);
        if (host == t && A::park_state(t).load(std::memory_order_acquire) == kParkParked) {
            Task* a = A::active(t);
            std::string what = A::wait_what(t) ? A::wait_what(t) : "?";
            std::string where = options_.wait_site ? options_.wait_site(a) : std::string();
            out.push_back(BlockedTask{A::id(a), a->name(), what, std::move(where)});
        }
        for (CancelNode* n : nodes) {
            {
                std::lock_guard<SpinLock> lock(n->mu);
                for (Task* m = n->members; m; m = A::member_next(m)) {
                    m->retain();
                    stack.push_back(m);
                }
            }
            n->release();
        }
        t->release();
    }
    std::sort(out.begin(), out.end(),
              [](const BlockedTask& a, const BlockedTask& b) { return a.id < b.id; });
    return out;
}

void RuntimeImpl::check_deadlock(Worker* w) {
    // The wakers (timer thread, blocking pool, reactor) make the woken task visible (the
    // injection queue) before they decrement their counters. So the counters are read first
    // and the queues after: a wake that the counters no longer show is then in the queues, or
    // a worker has taken it (not idle). Looking at the queues first left a window where a timer
    // fired between the two reads and a sleeping task's joiner was reported deadlocked.
    auto anything_pending = [&] {
        return timers_->pending() > 0 || blocking_->active() > 0 ||
               io_waits_.load(std::memory_order_seq_cst) > 0 ||
               external_waits_.load(std::memory_order_seq_cst) > 0;
    };
    auto all_quiet = [&] {
        if (anything_pending()) return false;
        full_fence();
        return !has_visible_work() &&
               num_idle_.load(std::memory_order_seq_cst) == static_cast<int>(workers_.size());
    };
    if (!all_quiet()) return;
    // Everything is idle and tasks are parked with nothing that could wake them.
    std::vector<BlockedTask> blocked = blocked_tasks();
    if (blocked.empty()) return;
    // Once more after the snapshot: a task woken and run meanwhile may have started a new wait.
    full_fence();
    if (!all_quiet()) return;
    // A host thread running a root task itself (run_as_guest) may still wake every one of them:
    // it makes a worker look again when it leaves, unless it left before it could see our flag
    // (then we look again now).
    if (guests_.load(std::memory_order_seq_cst) > 0) {
        guest_deferred_check_.store(true, std::memory_order_seq_cst);
        full_fence();
        if (guests_.load(std::memory_order_seq_cst) > 0) return;
        check_deadlock(w);
        return;
    }
    std::ostringstream report;
    report << "Deadlock: all tasks are blocked:";
    for (auto& b : blocked)
        report << "\n  " << (b.name.empty() ? "task" : b.name) << "#" << b.id << " waits on "
               << b.waits_on << (b.where.empty() ? "" : " at " + b.where);
    if (options_.on_deadlock) options_.on_deadlock(blocked);
    {
        std::lock_guard<std::mutex> lock(roots_mu_);
        deadlock_report_ = report.str();
        for (Task* r : roots_) {
            std::uint64_t word = A::wait_word(r).load(std::memory_order_acquire);
            if (static_cast<std::uint32_t>(word) == kWaitPending)
                try_claim(r, static_cast<std::uint32_t>(word >> 32), kWokeDeadlock) &&
                    (wake_claimed(r), true);
        }
    }
}

void RuntimeImpl::waker_done() {
    // The counter was lowered (seq_cst or acq_rel) before this fence; a worker parking pushes
    // itself onto idle_ before it reads the counters. So either that worker sees the lowered
    // counter, or we see it idle here and wake it.
    full_fence();
    if (stopping_.load(std::memory_order_acquire)) return;
    if (num_idle_.load(std::memory_order_seq_cst) != static_cast<int>(workers_.size())) return;
    wake_idle_worker();
}

std::string deadlock_report(RuntimeImpl* rt) {
    std::lock_guard<std::mutex> lock(rt->roots_mu_);
    return rt->deadlock_report_;
}

std::int64_t deadline_from(double seconds) noexcept {
    if (!(seconds < 1e9)) return INT64_MAX;
    if (seconds < 0) seconds = 0;
    return now_ns() + static_cast<std::int64_t>(seconds * 1e9);
}

bool should_yield_slow(Task* t, bool offer_work) noexcept {
    A::budget(t).store(kYieldBudget, std::memory_order_relaxed);
    RuntimeImpl* rt = A::rt(t);
    if (!rt) return false;
    if (A::seen_epoch(t) != rt->cancel_epoch_.load(std::memory_order_acquire)) return true;
    Worker* w = current_worker();
    if (!w) return false;
    std::int64_t now = now_ns();
    // An idle worker and nothing on our deque for it to steal: ask the task for work it kept
    // as records (lazy task creation). Once per budget, so about every thousand safepoints.
    if (offer_work && g_hooks.expose && rt->num_idle_.load(std::memory_order_relaxed) > 0 &&
        w->deque.size() == 0)
        g_hooks.expose(t, ExposeReason::IdleWorker);
    if (w->guest) {
        // A host thread's own call never gives the thread up (see yield_now), but when a slice
        // is used up it starts deferred work as a yield would (calls that wait on the outside
        // world get going while it computes), and what it spawned is offered to idle workers.
        if (w->slice_start == 0) {
            w->slice_start = now;
        } else if (now - w->slice_start >= rt->slice_ns_) {
            w->slice_start = now;
            if (g_hooks.expose) g_hooks.expose(t, ExposeReason::Yield);
        }
        if (w->deque.size() > 0) rt->notify_local();
        return false;
    }
    if (w->slice_start == 0) {
        w->slice_start = now;
        return false;
    }
    if (now - w->slice_start < rt->slice_ns_) return false;
    // The slice is used up. With a worker idle and nothing on our deque, no runnable task waits
    // for this worker: yielding would only move the task to another thread, where it would free
    // what it allocated here across threads (binary-trees on two workers, once returns became
    // safepoints: +25% wall time). It starts a new slice instead.
    if (rt->num_idle_.load(std::memory_order_relaxed) > 0 && w->deque.size() == 0) {
        w->slice_start = now;
        return false;
    }
    return true;
}

}  // namespace detail

// ---------------------------------------------------------------- public API

using namespace detail;

ErrorGroup::ErrorGroup(std::vector<std::exception_ptr> errors, bool partial)
    : errors_(std::move(errors)), partial_(partial) {
    what_ = partial_ ? "PartialFailure: " : "ErrorGroup: ";
    what_ += std::to_string(errors_.size()) + " error(s)";
    for (auto& e : errors_)
        what_ += "\n  " + describe(e);
}

std::string describe(const std::exception_ptr& e) {
    if (!e) return "no error";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

Task::Task() = default;

Task::~Task() {
    if (implicit_) implicit_->release();
    std::free(fiber_.saved);  // a task dropped while hibernated (a runtime torn down mid-sleep)
    for (auto& j : joiners_)
        j.first->release();
}

std::string Task::label() const {
    return (name_.empty() ? std::string("task") : name_) + "#" + std::to_string(id_);
}

TaskState Task::state() const noexcept {
    switch (run_state_.load(std::memory_order_acquire)) {
        case kUnstarted:
            return TaskState::Unstarted;
        case kDone:
            return TaskState::Done;
        default:
            return park_state_.load(std::memory_order_acquire) == kParkParked ? TaskState::Blocked
                                                                              : TaskState::Running;
    }
}

void Task::rethrow_error() {
    observed_.store(true, std::memory_order_release);
    if (error_) std::rethrow_exception(error_);
}

void Task::cancel() noexcept {
    if (self_cancelled_.exchange(true)) return;
    if (rt_) rt_->cancel_epoch_.fetch_add(1, std::memory_order_acq_rel);
    deliver_cancel_to_task(this);
}

void Task::join(bool inline_ok) {
    if (done()) return;
    Task* cur = current();
    if (!cur) {
        ext_join_.store(true, std::memory_order_seq_cst);
        for (;;) {
            std::uint8_t s = run_state_.load(std::memory_order_acquire);
            if (s == kDone) return;
            run_state_.wait(s, std::memory_order_acquire);
        }
    }
    if (cur == this) throw std::logic_error("a task cannot join itself");
    // Forcing the task we just spawned (the common case of a deferred call): take it back off
    // the bottom of our deque, so forced tasks do not pile up there as stale entries.
    if (inline_ok && run_state_.load(std::memory_order_relaxed) == kUnstarted) {
        Worker* w = current_worker();
        if (w && w->rt == rt_) {
            if (Task* b = w->deque.pop()) {
                if (b == this)
                    release();  // the queue's reference; we still hold the caller's
                else
                    w->deque.push(b);
            }
        }
    }
    std::uint8_t expected = kUnstarted;
    if (inline_ok && run_state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
        run_inline(cur, this);
        // If the inline run was cut short by the forcer's cancellation, raise it here too.
        if (error_) check_cancelled();
        return;
    }
    Task* host = A::host(cur);
    for (;;) {
        std::uint32_t gen;
        {
            std::lock_guard<SpinLock> lock(mu_);
            if (done()) return;
            gen = begin_wait(host, "join", this);
            host->retain();
            joiners_.emplace_back(host, gen);
        }
        std::uint32_t code = wait_for_claim(cur, host, gen);
        if (code == kWokeNotify) return;
        bool removed = false;
        {
            std::lock_guard<SpinLock> lock(mu_);
            auto it = std::find(joiners_.begin(), joiners_.end(), std::make_pair(host, gen));
            if (it != joiners_.end()) {
                joiners_.erase(it);
                removed = true;
            }
        }
        if (removed) host->release();
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt_));
        check_cancelled();
    }
}

bool Task::join_for(double seconds) {
    if (done()) return true;
    Task* cur = current();
    std::int64_t deadline = deadline_from(seconds);
    if (!cur) {
        while (!done() && now_ns() < deadline)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        return done();
    }
    Task* host = A::host(cur);
    for (;;) {
        std::uint32_t gen;
        {
            std::lock_guard<SpinLock> lock(mu_);
            if (done()) return true;
            if (now_ns() >= deadline) return false;
            gen = begin_wait(host, "join", this);
            host->retain();
            joiners_.emplace_back(host, gen);
        }
        TimerEntry* te = A::rt(cur)->timers_->add_wake(deadline, host, gen);
        std::uint32_t code = wait_for_claim(cur, host, gen);
        A::rt(cur)->timers_->cancel(te);
        bool removed = false;
        {
            std::lock_guard<SpinLock> lock(mu_);
            auto it = std::find(joiners_.begin(), joiners_.end(), std::make_pair(host, gen));
            if (it != joiners_.end()) {
                joiners_.erase(it);
                removed = true;
            }
        }
        if (removed) host->release();
        if (code == kWokeNotify) return true;
        if (code == kWokeTimeout) return done();
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt_));
        check_cancelled();
    }
}

Task* current_task() noexcept {
    return current();
}

void set_embedder_hooks(const EmbedderHooks& hooks) noexcept {
    g_hooks = hooks;
}

CancelNode* current_nursery() {
    Task* cur = current();
    if (!cur) throw std::logic_error("weft::rt::current_nursery called outside a runtime task");
    return innermost_nursery(cur);
}

const void* current_cancel_context() noexcept {
    Task* cur = current();
    return cur ? A::cancel_top(cur) : nullptr;
}

bool has_idle_worker() noexcept {
    Task* cur = current();
    return cur && A::rt(cur)->num_idle_.load(std::memory_order_relaxed) > 0;
}

Runtime::Runtime(RuntimeOptions options)
    : impl_(std::make_unique<RuntimeImpl>(std::move(options))) {}

Runtime::~Runtime() {
    stop();
}

void Runtime::stop() {
    impl_.reset();
}

TaskRef Runtime::run_root(Task* t, std::string_view name, bool here) {
    if (current_worker()) {
        t->release();
        throw std::logic_error("Runtime::block_on called from a worker thread");
    }
    RuntimeImpl* rt = impl_.get();
    A::id(t) = next_task_id();
    A::rt(t) = rt;
    A::name(t) = name;
    A::is_root(t) = true;
    TaskRef ref(t);
    {
        std::lock_guard<std::mutex> lock(rt->roots_mu_);
        rt->roots_.push_back(t);
    }
    if (rt->tracing()) rt->trace(TraceKind::Created, t);
    Worker* guest = here ? rt->acquire_guest() : nullptr;
    if (guest) {
        if (!rt->run_as_guest(t, guest)) ref->join();  // it parked: a worker finishes it
    } else {
        rt->inject(t);
        ref->join();
    }
    {
        std::lock_guard<std::mutex> lock(rt->roots_mu_);
        rt->roots_.erase(std::find(rt->roots_.begin(), rt->roots_.end(), t));
    }
    return ref;
}

TaskRef Runtime::start_root_task(Task* t, std::string_view name) {
    RuntimeImpl* rt = impl_.get();
    A::id(t) = next_task_id();
    A::rt(t) = rt;
    A::name(t) = name;
    A::is_root(t) = true;
    A::detached_root(t) = true;  // finish_task takes it out of roots_ (it is alive until then)
    TaskRef ref(t);
    {
        std::lock_guard<std::mutex> lock(rt->roots_mu_);
        rt->roots_.push_back(t);
    }
    if (rt->tracing()) rt->trace(TraceKind::Created, t);
    rt->inject(t);
    return ref;
}

unsigned Runtime::workers() const noexcept {
    return static_cast<unsigned>(impl_->workers_.size());
}

Counters Runtime::counters() const noexcept {
    Counters c;
    for (auto& w : impl_->workers_) {
        c.spawned += w->c_spawned.load(std::memory_order_relaxed);
        c.inlined += w->c_inlined.load(std::memory_order_relaxed);
        c.fibers += w->c_fibers.load(std::memory_order_relaxed);
        c.switches += w->c_switches.load(std::memory_order_relaxed);
        c.steals += w->c_steals.load(std::memory_order_relaxed);
        c.parks += w->c_parks.load(std::memory_order_relaxed);
        c.worker_parks += w->c_worker_parks.load(std::memory_order_relaxed);
    }
    return c;
}

std::vector<BlockedTask> Runtime::blocked_tasks() const {
    return impl_->blocked_tasks();
}

void yield_now() {
    Task* cur = current();
    if (!cur) {
        std::this_thread::yield();
        return;
    }
    RuntimeImpl* rt = A::rt(cur);
    if (g_hooks.expose) g_hooks.expose(cur, ExposeReason::Yield);
    // Tasks this worker spawned without waking a sleeper (push_new) become everyone's work
    // at the latest here, one time slice later.
    Worker* w = current_worker();
    if (w && w->guest) {
        // A host thread running its own call (block_on_here) takes no worker's time: there is
        // nothing on this thread to give a turn to, so the task goes on with a new slice. What
        // it spawned becomes everyone's work, as on a worker.
        if (w->deque.size() > 0) rt->notify_local();
        w->slice_start = 0;
        return;
    }
    if (w && w->rt == rt) {
        if (w->deque.size() > 0) rt->notify_local();
        // Nothing else runnable that this worker or an idle one could take: the yield would
        // only switch to the scheduler and back (two switches, a locked queue). The task goes
        // on with a new time slice instead, as sched_yield() returns at once on an idle CPU.
        // Tasks running on other workers are not waiting for this one.
        if (!rt->has_other_work(w)) {
            w->slice_start = 0;
            return;
        }
    }
    if (rt->tracing()) rt->trace(TraceKind::Blocked, cur, "yield");
    switch_out(A::host(cur), SwitchReason::Yield);
}


bool should_yield() noexcept {
    Task* cur = current();
    return cur && cur->should_yield();
}

void check_cancelled() {
    Task* cur = current();
    if (cur && is_cancelled(cur)) throw Cancelled();
}

void checkpoint() {
    check_cancelled();
    yield_now();
}

bool on_worker_thread() noexcept {
    detail::Worker* w = detail::current_worker();
    return w && !w->guest;
}

void* current_embedder_data() noexcept {
    detail::Worker* w = detail::current_worker();
    detail::RuntimeImpl* rt = w ? w->rt : detail::tl_runtime;
    return rt ? rt->options_.embedder_data : nullptr;
}

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void sleep_until(std::int64_t deadline) {
    Task* cur = current();
    if (!cur) {
        std::int64_t d = deadline - now_ns();
        if (d > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(d));
        return;
    }
    Task* host = A::host(cur);
    RuntimeImpl* rt = A::rt(cur);
    for (;;) {
        check_cancelled();
        if (now_ns() >= deadline) return;
        std::uint32_t gen = begin_wait(host, "sleep");
        TimerEntry* te = rt->timers_->add_wake(deadline, host, gen);
        A::fiber(host).hibernate = deadline - now_ns() >= rt->hibernate_ns_;
        std::uint32_t code = wait_for_claim(cur, host, gen);
        A::fiber(host).hibernate = false;
        rt->timers_->cancel(te);
        if (code == kWokeTimeout) return;
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt));
    }
}

void sleep_for(double seconds) {
    sleep_until(deadline_from(seconds));
}

std::uintptr_t current_stack_low() noexcept {
    Worker* w = current_worker();
    if (w && w->host) return reinterpret_cast<std::uintptr_t>(A::fiber(w->host).stack_lo);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void* addr = nullptr;
        std::size_t size = 0;
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
        return reinterpret_cast<std::uintptr_t>(addr);
    }
    char here;  // unknown: pretend there is a megabyte left
    return reinterpret_cast<std::uintptr_t>(&here) - (1 << 20);
}

std::size_t remaining_stack() noexcept {
    char here;
    auto sp = reinterpret_cast<std::uintptr_t>(&here);
    std::uintptr_t lo = current_stack_low();
    return sp > lo ? sp - lo : 0;
}

}  // namespace weft::rt
