// External completion: a task parks until another thread — any thread, not only a runtime one —
// delivers a value or an error (rt::oneshot<T>()).
//
// This is the primitive under the embedding API's asynchronous host functions (a host event
// loop resolves a `Completion` later) and the cluster layer's callbacks. The blocking pool has
// the same shape internally (begin_wait / try_wake on the waiting task's host); this makes it
// public, with three more properties:
//  * cancellable: a cancelled waiter stops waiting at once (Cancelled is raised in it), the
//    sender sees `cancelled()` and its `on_cancel` callbacks run (once, on the waiter's thread);
//    a value delivered afterwards is dropped;
//  * counted by the deadlock detector: while a task waits on a oneshot whose sender is alive,
//    the runtime does not report Deadlock (another thread may still complete it);
//  * never lost: dropping an unsent sender delivers BrokenOneshot to the waiter.
//
// Usage (in a task):
//     auto [tx, rx] = rt::oneshot<int>();
//     host_loop.post([tx = std::move(tx)]() mutable { tx.set_value(42); });
//     int v = rx.wait();        // parks this task, never the worker thread
//
// Thread-safety: a sender and a receiver may be used on different threads; each one is used by
// one thread at a time (move-only handles).
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/runtime/task.hpp"

namespace weft::rt {

/// The sender of a oneshot was destroyed without delivering a value or an error.
class BrokenOneshot : public std::runtime_error {
  public:
    BrokenOneshot() : std::runtime_error("oneshot sender dropped without a value") {}
};

namespace detail {
class RuntimeImpl;

/// Type-independent state of a oneshot (the value lives in OneshotState<T>). States: Pending,
/// Done (delivered), Abandoned (the waiter was cancelled or the receiver dropped).
class OneshotCore {
  public:
    OneshotCore() = default;
    OneshotCore(const OneshotCore&) = delete;
    OneshotCore& operator=(const OneshotCore&) = delete;
    virtual ~OneshotCore() = default;

    /// Delivers: runs `write` (which stores the value) under the lock if still Pending, then
    /// wakes the waiter. Returns false (and does not call `write`) when already delivered or
    /// abandoned.
    template <class F>
    bool deliver(F&& write) {
        std::unique_lock<std::mutex> lock(mu_);
        if (state_ != kPending) return false;
        write();
        finish_locked(lock);
        return true;
    }
    /// Parks the current task (or blocks a plain thread) until delivered. Raises Cancelled when
    /// the waiting task is cancelled (the oneshot is then abandoned and on_cancel callbacks run).
    void wait();
    /// Gives up the wait without waiting (receiver dropped): abandons, runs on_cancel callbacks.
    void abandon();
    /// The receiver gave up (cancelled or dropped) before a value was delivered.
    bool cancelled() const;
    /// A value or error was delivered.
    bool ready() const;
    /// Adds a callback run once if the oneshot is abandoned before delivery (at once, on this
    /// thread, if it already was). Never run after a delivery.
    void on_cancel(std::function<void()> f);

  private:
    static constexpr int kPending = 0, kDone = 1, kAbandoned = 2;
    void finish_locked(std::unique_lock<std::mutex>& lock);
    void abandon_locked(std::unique_lock<std::mutex>& lock);
    mutable std::mutex mu_;
    int state_ = kPending;
    Task* host_ = nullptr;  // a parked waiter's host (strong reference while set)
    std::uint32_t gen_ = 0;
    RuntimeImpl* counted_ = nullptr;  // the runtime whose external_waits_ counts this wait
    bool thread_waiter_ = false;      // a plain thread waits on cv_
    std::condition_variable cv_;
    std::vector<std::function<void()>> on_cancel_;
};

template <class T>
struct OneshotState final : OneshotCore {
    std::optional<Stored<T>> value;
    std::exception_ptr error;
};
}  // namespace detail

template <class T>
class OneshotReceiver;

/// The completing side of a oneshot: move-only; any thread.
template <class T>
class OneshotSender {
  public:
    OneshotSender() = default;
    OneshotSender(OneshotSender&&) noexcept = default;
    OneshotSender& operator=(OneshotSender&& o) noexcept {
        if (this != &o) {
            drop();
            st_ = std::move(o.st_);
        }
        return *this;
    }
    /// Unless a value or error was sent: delivers BrokenOneshot to the waiter.
    ~OneshotSender() { drop(); }

    /// Delivers `v` (T = void: no argument). Returns false if the oneshot was already completed
    /// or the waiter gave up (the value is then dropped). Thread-safe; never blocks for long.
    template <class... V>
    bool set_value(V&&... v) {
        if (!st_) return false;
        auto st = std::move(st_);
        return st->deliver([&] {
            if constexpr (std::is_void_v<T>)
                st->value.emplace();
            else
                st->value.emplace(std::forward<V>(v)...);
        });
    }
    /// Delivers an error, rethrown by the waiter's wait(). Same return as set_value.
    bool set_error(std::exception_ptr e) {
        if (!st_) return false;
        auto st = std::move(st_);
        return st->deliver([&] { st->error = std::move(e); });
    }
    /// True when the waiter was cancelled (or dropped its receiver): a result is no longer needed.
    bool cancelled() const { return st_ && st_->cancelled(); }
    /// Runs `f` once if the waiter gives up before a value is sent (on the waiter's thread, a
    /// runtime worker: keep it short and non-blocking); at once if it already has.
    void on_cancel(std::function<void()> f) {
        if (st_) st_->on_cancel(std::move(f));
    }
    /// Whether this handle can still send.
    bool valid() const noexcept { return static_cast<bool>(st_); }

  private:
    template <class U>
    friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
    void drop() {
        if (st_) set_error(std::make_exception_ptr(BrokenOneshot()));
    }
    std::shared_ptr<detail::OneshotState<T>> st_;
};

/// The waiting side of a oneshot: move-only.
template <class T>
class OneshotReceiver {
  public:
    OneshotReceiver() = default;
    OneshotReceiver(OneshotReceiver&&) noexcept = default;
    OneshotReceiver& operator=(OneshotReceiver&& o) noexcept {
        if (this != &o) {
            if (st_) st_->abandon();
            st_ = std::move(o.st_);
        }
        return *this;
    }
    /// A receiver dropped before the value arrived abandons the oneshot (the sender sees
    /// cancelled(), its on_cancel callbacks run).
    ~OneshotReceiver() {
        if (st_) st_->abandon();
    }

    /// In a task: parks until the value arrives (the worker runs other tasks meanwhile); on a
    /// plain thread: blocks it. Returns the value or rethrows the sent error. Raises Cancelled
    /// if the waiting task is cancelled first. Call once.
    T wait() {
        st_->wait();
        auto st = std::move(st_);
        if (st->error) std::rethrow_exception(st->error);
        if constexpr (!std::is_void_v<T>) return std::move(*st->value);
    }
    /// A value or error has arrived (wait() will not park).
    bool ready() const { return st_ && st_->ready(); }

  private:
    template <class U>
    friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
    std::shared_ptr<detail::OneshotState<T>> st_;
};

/// A new oneshot: the sender goes to whoever completes it, the receiver to the task that waits.
template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
    auto st = std::make_shared<detail::OneshotState<T>>();
    OneshotSender<T> tx;
    OneshotReceiver<T> rx;
    tx.st_ = st;
    rx.st_ = std::move(st);
    return {std::move(tx), std::move(rx)};
}

}  // namespace weft::rt
