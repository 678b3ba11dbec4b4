// mailbox.hpp — an actor's mailbox: a bounded queue whose messages are handled, one at a time,
// by a task that exists only while messages wait.
//
// An actor is not a fiber parked on its mailbox. Idle, it is this object and its owner's state:
// no task, no stack, nothing the scheduler or the deadlock detector sees. The first message
// posted to an idle mailbox starts a task (the owner's `start` callback); that task handles at
// most `batch` messages, then yields its worker to others and goes on, and ends as soon as the
// mailbox is empty. This is the scheduling of Pony and CAF ("an actor is scheduled when it has
// work"), and it is why a million idle actors cost memory only (docs/actors.md).
//
// Invariants:
//  - At most one task handles messages at any moment (the `scheduled_` flag is the token: it
//    is taken by the poster that finds the mailbox idle, and given back by the task when it
//    finds the queue empty; a Dekker-style re-check closes the window between the two).
//  - Messages of one sender are handled in the order it posted them (the queue is FIFO and a
//    post completes before the sender's next one begins).
//  - The bound counts messages waiting, not the one being handled (a message leaves the queue
//    before its handler runs).
//  - The queue is a runtime channel (runtime/channel.cpp): its buffer grows by doubling up to
//    the bound, never quadratic work per message however long the queue (Erlang's on-heap
//    selective-receive cliff does not exist here: there is no selective receive).
//
// Thread-safety: every member may be called from any task of the runtime, concurrently.
// `post` with Overflow::Block parks the calling task (cancellable, deadline-aware, seen by the
// deadlock detector) until there is room or the mailbox is closed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/task.hpp"

namespace weft::rt {

/// What `post` does when the mailbox holds `capacity` messages (spec section 10).
enum class Overflow : std::uint8_t {
    Block,       ///< the sender waits for room (backpressure)
    DropOldest,  ///< the oldest waiting message is removed (given to `on_drop`), the new one queued
    DropNew,     ///< the new message is not queued
    Error,       ///< the new message is not queued; the caller raises (MailboxFull)
};

/// The outcome of one `post`.
enum class PostResult : std::uint8_t {
    Posted,    ///< queued (with DropOldest, possibly after dropping the oldest)
    Rejected,  ///< full under DropNew or Error: the message was not queued (left in the caller's hands)
    Closed,    ///< the mailbox is closed: the message was not queued
};

template <class T>
class Mailbox : public std::enable_shared_from_this<Mailbox<T>> {
  public:
    struct Options {
        std::size_t capacity = 10000;  ///< messages that may wait (>= 1)
        Overflow overflow = Overflow::Block;
        std::size_t batch = 64;  ///< messages handled before the task yields its worker
        /// Times an emptied mailbox yields its worker and looks again before its task ends. In
        /// a conversation (ping-pong, request-reply between actors) the answer usually arrives
        /// during that yield, and the same task handles it: one fiber switch instead of ending
        /// a task and starting another (measured: bench/actors/pingpong.weft, BENCHMARKS.md).
        int linger = 1;
    };
    /// `handle(msg)` runs on the mailbox's task for each message; it must not throw.
    /// `on_drop(msg)` receives each message removed unhandled (DropOldest, or queued when the
    /// mailbox was closed); it runs on the task that removed it and must not throw.
    /// `start(drain)` must start a task that calls `drain()` (the owner chooses its nursery,
    /// name and context); it is called from a task, never concurrently with a running drain.
    static std::shared_ptr<Mailbox> make(Options o, std::function<void(T&)> handle,
                                         std::function<void(T&)> on_drop,
                                         std::function<void(std::function<void()>)> start) {
        return std::shared_ptr<Mailbox>(
            new Mailbox(o, std::move(handle), std::move(on_drop), std::move(start)));
    }

    /// Queues `msg` (moved from when Posted; left intact otherwise). Call from a task.
    /// Overflow::Block waits for room: raises Cancelled / TimeoutError like any wait.
    PostResult post(T& msg) {
        if (closed_.load(std::memory_order_acquire)) return PostResult::Closed;
        // Counted before the message can be taken (so the count never goes below zero), and
        // uncounted when it is not queued after all.
        queued_.fetch_add(1, std::memory_order_relaxed);
        PostResult r = post_counted(msg);
        if (r != PostResult::Posted) {
            queued_.fetch_sub(1, std::memory_order_relaxed);
            return r;
        }
        note_peak();
        schedule();
        return PostResult::Posted;
    }

  private:
    PostResult post_counted(T& msg) {
        switch (opts_.overflow) {
            case Overflow::Block:
                try {
                    ch_.send(std::move(msg));
                } catch (const ChannelClosed&) {
                    return PostResult::Closed;
                }
                break;
            case Overflow::DropOldest:
                for (;;) {
                    std::optional<T> v;
                    v.emplace(std::move(msg));
                    // try_send takes its argument by value: keep the message if it fails.
                    auto r = ch_.core_ptr()->try_send(&*v);
                    if (r == detail::TryResult::Ok) break;
                    msg = std::move(*v);
                    if (r == detail::TryResult::Closed) return PostResult::Closed;
                    std::optional<T> old;
                    if (ch_.try_recv(old) == detail::TryResult::Ok) {
                        queued_.fetch_sub(1, std::memory_order_relaxed);
                        dropped_.fetch_add(1, std::memory_order_relaxed);
                        on_drop_(*old);
                    }
                }
                break;
            case Overflow::DropNew:
            case Overflow::Error: {
                std::optional<T> v;
                v.emplace(std::move(msg));
                auto r = ch_.core_ptr()->try_send(&*v);
                if (r != detail::TryResult::Ok) {
                    msg = std::move(*v);
                    return r == detail::TryResult::Closed ? PostResult::Closed : PostResult::Rejected;
                }
                break;
            }
        }
        return PostResult::Posted;
    }

  public:

    /// The body of the mailbox's task (see `start`): handles messages until the queue is
    /// empty, the mailbox is suspended, or it is closed and drained.
    void drain() {
        int linger = opts_.linger;
        for (;;) {
            std::size_t n = 0;
            // A closed mailbox is emptied even while suspended (its messages are dropped).
            while (n < opts_.batch && (!suspended_.load(std::memory_order_acquire) || closed())) {
                std::optional<T> m;
                if (ch_.try_recv(m) != detail::TryResult::Ok) break;
                queued_.fetch_sub(1, std::memory_order_relaxed);
                if (closed_.load(std::memory_order_acquire)) {
                    // Closed while it waited: it is not handled.
                    on_drop_(*m);
                    continue;
                }
                busy_.store(true, std::memory_order_release);
                handle_(*m);
                busy_.store(false, std::memory_order_release);
                handled_.fetch_add(1, std::memory_order_relaxed);
                ++n;
            }
            if (n == opts_.batch) {
                yield_now();  // fairness: other actors and tasks get the worker
                continue;
            }
            if (n > 0) linger = opts_.linger;
            if (linger > 0 && !closed() && !suspended_.load(std::memory_order_acquire)) {
                --linger;
                yield_now();  // an answer may be on its way (see Options::linger)
                continue;
            }
            scheduled_.store(false, std::memory_order_seq_cst);
            // A post that queued after our last try_recv saw scheduled_ still true and left the
            // message to us: look again before going idle.
            if ((suspended_.load(std::memory_order_seq_cst) && !closed()) || ch_.len() == 0) return;
            if (scheduled_.exchange(true, std::memory_order_seq_cst)) return;
        }
    }

    /// No message is queued from now on (posts return Closed; senders parked on a full mailbox
    /// wake with Closed). Messages still queued go to `on_drop`, by the task if it runs, else
    /// here. Idempotent.
    void close() {
        if (closed_.exchange(true, std::memory_order_acq_rel)) return;
        ch_.close();
        schedule();  // the task (started if need be) hands what is queued to on_drop
    }
    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    /// No message is handled until resume() (the one being handled finishes). Messages wait.
    void suspend() noexcept { suspended_.store(true, std::memory_order_seq_cst); }
    void resume() {
        suspended_.store(false, std::memory_order_seq_cst);
        if (ch_.len() > 0 || closed()) schedule();
    }
    bool suspended() const noexcept { return suspended_.load(std::memory_order_acquire); }

    /// True while a handler runs.
    bool busy() const noexcept { return busy_.load(std::memory_order_acquire); }
    /// True while a task holds the mailbox (handling, or about to).
    bool scheduled() const noexcept { return scheduled_.load(std::memory_order_acquire); }
    /// Messages waiting (not counting the one being handled).
    std::size_t len() const { return ch_.len(); }
    /// Counters for observability (relaxed reads).
    std::uint64_t handled() const noexcept { return handled_.load(std::memory_order_relaxed); }
    std::uint64_t dropped_oldest() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
    const Options& options() const noexcept { return opts_; }

  private:
    Mailbox(Options o, std::function<void(T&)> handle, std::function<void(T&)> on_drop,
            std::function<void(std::function<void()>)> start)
        : opts_(o),
          ch_(Channel<T>::make(o.capacity ? o.capacity : 1)),
          handle_(std::move(handle)),
          on_drop_(std::move(on_drop)),
          start_(std::move(start)) {}

    void schedule() {
        if (suspended_.load(std::memory_order_seq_cst) && !closed()) return;
        if (scheduled_.exchange(true, std::memory_order_seq_cst)) return;
        std::weak_ptr<Mailbox> weak = this->weak_from_this();
        start_([weak] {
            if (auto self = weak.lock()) self->drain();
        });
    }
    void note_peak() {
        // Counted by post() rather than read from the channel (which would take its lock again);
        // senders parked on a full mailbox are counted too, hence the bound.
        std::size_t n = std::min(queued_.load(std::memory_order_relaxed), opts_.capacity);
        std::size_t p = peak_.load(std::memory_order_relaxed);
        while (n > p && !peak_.compare_exchange_weak(p, n, std::memory_order_relaxed)) {
        }
    }

    Options opts_;
    Channel<T> ch_;
    std::function<void(T&)> handle_;
    std::function<void(T&)> on_drop_;
    std::function<void(std::function<void()>)> start_;
    std::atomic<bool> scheduled_{false};
    std::atomic<bool> closed_{false};
    std::atomic<bool> suspended_{false};
    std::atomic<bool> busy_{false};
    std::atomic<std::uint64_t> handled_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::size_t> peak_{0};
    std::atomic<std::size_t> queued_{0};  // posted and not yet taken (for the peak only)
};

}  // namespace weft::rt
