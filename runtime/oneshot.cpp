// External completion (rt::oneshot, weft/runtime/oneshot.hpp): the waiting side parks its task
// with begin_wait / wait_for_claim, the sending side claims the wait with try_wake from any
// thread, as the blocking pool does.
//
// Deadlock detection: while a task waits, RuntimeImpl::external_waits_ counts the oneshot (a
// sender that is still alive may complete it). The sender wakes the task and lowers the counter
// while it holds the oneshot's mutex, and the woken task takes that mutex before wait() returns:
// so the task cannot finish, and its runtime cannot be destroyed, while a foreign thread still
// touches the runtime (a plain host thread is not joined by Runtime::stop as pool threads are).
// Waking before lowering the counter keeps the detector from seeing "nothing pending" while the
// woken task is not yet visible in a run queue (waker_done then looks again).
#include "runtime/internal.h"
#include "weft/runtime/oneshot.hpp"

namespace weft::rt::detail {

void OneshotCore::finish_locked(std::unique_lock<std::mutex>& lock) {
    state_ = kDone;
    if (Task* h = std::exchange(host_, nullptr)) {
        try_wake(h, gen_, kWokeNotify);
        h->release();
    }
    if (RuntimeImpl* rt = std::exchange(counted_, nullptr)) {
        rt->external_waits_.fetch_sub(1, std::memory_order_acq_rel);
        rt->waker_done();
    }
    on_cancel_.clear();
    if (thread_waiter_) cv_.notify_all();
}

void OneshotCore::abandon_locked(std::unique_lock<std::mutex>& lock) {
    if (state_ != kPending) return;
    state_ = kAbandoned;
    if (Task* h = std::exchange(host_, nullptr)) h->release();
    if (RuntimeImpl* rt = std::exchange(counted_, nullptr)) {
        rt->external_waits_.fetch_sub(1, std::memory_order_acq_rel);
        rt->waker_done();
    }
    auto callbacks = std::move(on_cancel_);
    on_cancel_.clear();
    lock.unlock();
    for (auto& f : callbacks)
        f();
    lock.lock();
}

void OneshotCore::wait() {
    std::unique_lock<std::mutex> lock(mu_);
    Task* cur = current();
    if (!cur) {  // a plain thread
        thread_waiter_ = true;
        cv_.wait(lock, [&] { return state_ != kPending; });
        if (state_ == kAbandoned) throw Cancelled();
        return;
    }
    Task* host = A::host(cur);
    RuntimeImpl* rt = A::rt(cur);
    for (;;) {
        if (state_ == kDone) return;
        if (state_ == kAbandoned) throw Cancelled();
        std::uint32_t gen = begin_wait(host, "external completion", this);
        if (!host_) host->retain();
        host_ = host;
        gen_ = gen;
        if (!counted_) {
            counted_ = rt;
            rt->external_waits_.fetch_add(1, std::memory_order_acq_rel);
        }
        lock.unlock();
        std::uint32_t code = wait_for_claim(cur, host, gen);
        lock.lock();
        if (state_ == kDone) return;  // delivered (even if a cancellation raced with it)
        if (code != kWokeNotify && is_cancelled(cur)) {
            abandon_locked(lock);
            throw Cancelled();
        }
    }
}

void OneshotCore::abandon() {
    std::unique_lock<std::mutex> lock(mu_);
    abandon_locked(lock);
}

bool OneshotCore::cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == kAbandoned;
}

bool OneshotCore::ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == kDone;
}

void OneshotCore::on_cancel(std::function<void()> f) {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == kPending) {
        on_cancel_.push_back(std::move(f));
        return;
    }
    bool run = state_ == kAbandoned;
    lock.unlock();
    if (run) f();
}

}  // namespace weft::rt::detail
