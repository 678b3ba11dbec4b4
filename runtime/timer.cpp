// Timers: one ordered set of deadlines served by a dedicated thread.
//
// A sleeping task costs one small entry here and nothing on any worker. Entries are ordered by
// (deadline, sequence) in a std::set so that a wait that ends early (the channel delivered
// before the timeout, the scope closed before its deadline) removes its entry in O(log n); a
// lazy-deletion heap would leave dead entries behind and make the deadlock detector believe a
// timer is still pending. Firing only claims the wait (or cancels the scope), so a timer that
// loses the race to another waker does nothing. A separate thread keeps worker parking simple
// (workers sleep on a futex with no timeout); its wake-up latency is that of a condition
// variable, well under the ~1 ms accuracy asked for. Per-worker timer wheels are the next step
// if timer-heavy loads show contention on the mutex.
//
// Entry ownership: an entry is referenced by the set (until fired or cancelled) and by the
// waiter that created it (until it calls cancel()). Both release through `unref`.
#include "runtime/internal.h"

namespace weft::rt::detail {

namespace {
struct Counted : TimerEntry {
    std::atomic<int> refs{2};
};
void unref(TimerEntry* e) {
    auto* c = static_cast<Counted*>(e);
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
}
}  // namespace

TimerQueue::TimerQueue(RuntimeImpl* rt) : rt_(rt) {
    thread_ = std::thread([this] { run(); });
}

TimerQueue::~TimerQueue() {
    stop();
    for (TimerEntry* e : set_) {
        if (e->host) e->host->release();
        if (e->node) e->node->release();
        unref(e);
    }
}

void TimerQueue::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

TimerEntry* TimerQueue::add(TimerEntry* e) {
    bool earliest;
    {
        std::lock_guard<std::mutex> lock(mu_);
        e->seq = seq_++;
        auto it = set_.insert(e).first;
        earliest = it == set_.begin();
        pending_.fetch_add(1, std::memory_order_acq_rel);
    }
    if (earliest) cv_.notify_one();
    return e;
}

TimerEntry* TimerQueue::add_wake(std::int64_t when, Task* host, std::uint32_t gen) {
    auto* e = new Counted;
    e->when = when;
    e->host = host;
    host->retain();
    e->gen = gen;
    return add(e);
}

TimerEntry* TimerQueue::add_deadline(std::int64_t when, CancelNode* node) {
    auto* e = new Counted;
    e->when = when;
    e->node = node;
    node->retain();
    return add(e);
}

void TimerQueue::add_callback(std::int64_t when, std::function<void()> fn) {
    auto* e = new Counted;
    e->when = when;
    e->fn = std::move(fn);
    e->refs.store(1, std::memory_order_relaxed);  // no handle is returned
    add(e);
}

void TimerQueue::cancel(TimerEntry* e) {
    if (!e) return;
    bool removed = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (e->in_set) {
            set_.erase(e);
            e->in_set = false;
            removed = true;
        }
    }
    if (removed) {
        if (e->host) e->host->release();
        if (e->node) e->node->release();
        pending_.fetch_sub(1, std::memory_order_acq_rel);
        unref(e);  // the set's reference
    }
    unref(e);  // the caller's reference
}

void TimerQueue::run() {
    set_thread_runtime(rt_);
    std::vector<TimerEntry*> due;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
        if (set_.empty()) {
            cv_.wait(lock);
            continue;
        }
        std::int64_t now = now_ns();
        TimerEntry* first = *set_.begin();
        if (first->when > now) {
            cv_.wait_for(lock, std::chrono::nanoseconds(first->when - now));
            continue;
        }
        while (!set_.empty() && (*set_.begin())->when <= now) {
            TimerEntry* e = *set_.begin();
            set_.erase(set_.begin());
            e->in_set = false;
            due.push_back(e);
        }
        lock.unlock();
        for (TimerEntry* e : due) {
            if (e->host) {
                try_wake(e->host, e->gen, kWokeTimeout);
                e->host->release();
            } else if (e->node) {
                e->node->deadline_hit.store(true, std::memory_order_release);
                cancel_node(e->node);
                e->node->release();
            } else if (e->fn) {
                e->fn();
            }
            pending_.fetch_sub(1, std::memory_order_acq_rel);
            unref(e);
        }
        due.clear();
        rt_->waker_done();
        lock.lock();
    }
}

}  // namespace weft::rt::detail
