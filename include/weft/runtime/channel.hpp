// Channels and select, with Go's semantics.
//
// Channel<T> is a handle (shared ownership, cheap to copy) to a queue with capacity 0
// (unbuffered: a send waits for a receiver, a rendezvous), N (bounded) or unbounded. close() is
// idempotent; receivers drain buffered values after close and then see "closed"; a send on a
// closed channel raises ChannelClosed. Waiting operations must run inside a task; they park the
// task (never the worker thread) and are cancellable (raise Cancelled).
//
// Select waits on several send/recv cases at once, optionally with a timeout and/or a default.
// Like Go's runtime/select.go: all channels involved are locked in address order, the cases are
// polled in a uniformly random order (so among ready cases each is equally likely), and if none
// is ready the task enqueues a waiter on every channel. Exactly one case takes effect: every
// waiter of one select shares the task's wait word and a counterpart must win a CAS on it before
// it may complete the operation.
//
// Thread-safety: all operations may be called concurrently from any task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "weft/runtime/errors.hpp"

namespace weft::rt {

namespace detail {
/// How a type-erased channel moves elements around.
struct ElementOps {
    std::size_t size;
    std::size_t align;
    void (*move_construct)(void* dst, void* src);  // src is a T*, dst raw storage
    void (*destroy)(void* p);
    void (*put)(void* sink, void* src);  // sink is a std::optional<T>*
};

template <class T>
const ElementOps* element_ops() {
    static const ElementOps ops{
        sizeof(T), alignof(T),
        [](void* d, void* s) { ::new (d) T(std::move(*static_cast<T*>(s))); },
        [](void* p) { static_cast<T*>(p)->~T(); },
        [](void* sink, void* s) {
            static_cast<std::optional<T>*>(sink)->emplace(std::move(*static_cast<T*>(s)));
        }};
    return &ops;
}

struct ChanWaiter;

/// Result of a non-blocking attempt.
enum class TryResult : std::uint8_t { Ok, WouldBlock, Closed };

/// The type-erased channel (implemented in runtime/channel.cpp).
class ChannelCore {
  public:
    static constexpr std::size_t kUnbounded = static_cast<std::size_t>(-1);
    ChannelCore(const ElementOps* ops, std::size_t capacity);
    ~ChannelCore();
    ChannelCore(const ChannelCore&) = delete;
    ChannelCore& operator=(const ChannelCore&) = delete;

    /// Moves *src (a T) into the channel; waits while it cannot. Raises ChannelClosed/Cancelled.
    void send(void* src);
    /// Receives into *sink (an optional<T>); false when closed and drained. `deadline_ns` is an
    /// absolute steady-clock time (now_ns()); INT64_MAX = none; past it raises TimeoutError.
    bool recv(void* sink, std::int64_t deadline_ns = INT64_MAX);
    TryResult try_send(void* src);
    TryResult try_recv(void* sink);
    void close();
    bool closed() const;
    std::size_t len() const;
    std::size_t capacity() const noexcept { return cap_; }

    // internals used by select
    struct Impl;
    Impl* impl() noexcept { return impl_; }

  private:
    const ElementOps* ops_;
    std::size_t cap_;
    Impl* impl_;
};

struct SelectCase {
    ChannelCore* ch = nullptr;  // nullptr: a nil channel, never ready
    bool is_send = false;
    void* value = nullptr;      // send: T* source; recv: optional<T>* sink
    bool ok = false;  // recv: true if a value was received, false if closed
};

/// Runs a select; returns the chosen case index, kSelectDefault or kSelectTimeout.
int select_impl(SelectCase* cases, int n, bool has_default, std::int64_t deadline_ns);
}  // namespace detail

constexpr int kSelectDefault = -1;
constexpr int kSelectTimeout = -2;

/// A channel of T (T must be move-constructible). Default-constructed: a nil channel (never
/// ready in select; other operations raise std::logic_error).
template <class T>
class Channel {
  public:
    Channel() = default;
    /// capacity 0 = unbuffered (rendezvous).
    static Channel make(std::size_t capacity = 0) {
        Channel c;
        c.core_ = std::make_shared<detail::ChannelCore>(detail::element_ops<T>(), capacity);
        return c;
    }
    static Channel make_unbounded() { return make(detail::ChannelCore::kUnbounded); }

    /// Sends `v`, waiting for room (or, unbuffered, for a receiver). Raises ChannelClosed if the
    /// channel is (or gets) closed before the value is delivered; Cancelled.
    void send(T v) { core().send(&v); }
    /// Receives a value; raises ChannelClosed when closed and drained; Cancelled.
    T recv() {
        std::optional<T> out;
        if (!core().recv(&out)) throw ChannelClosed();
        return std::move(*out);
    }
    /// Receives a value, or nullopt when closed and drained (Go's `v, ok := <-ch`).
    std::optional<T> recv_ok() {
        std::optional<T> out;
        core().recv(&out);
        return out;
    }
    /// Like recv() but raises TimeoutError after `seconds`.
    T recv_for(double seconds) {
        std::optional<T> out;
        std::int64_t deadline = seconds < 1e9 ? deadline_after(seconds) : INT64_MAX;
        if (!core().recv(&out, deadline)) throw ChannelClosed();
        return std::move(*out);
    }
    /// Never waits. Ok: `out` holds a value; WouldBlock: nothing ready; Closed: closed, drained.
    detail::TryResult try_recv(std::optional<T>& out) { return core().try_recv(&out); }
    /// Never waits. Raises ChannelClosed on a closed channel; false if it would block.
    bool try_send(T v) {
        auto r = core().try_send(&v);
        if (r == detail::TryResult::Closed) throw ChannelClosed();
        return r == detail::TryResult::Ok;
    }
    /// Closes the channel (idempotent): waiting senders raise ChannelClosed, receivers drain.
    void close() { core().close(); }
    bool closed() const { return core_ ? core_->closed() : false; }
    /// Buffered values.
    std::size_t len() const { return core_ ? core_->len() : 0; }
    /// 0 unbuffered, SIZE_MAX unbounded.
    std::size_t capacity() const noexcept { return core_ ? core_->capacity() : 0; }
    bool is_nil() const noexcept { return !core_; }
    detail::ChannelCore* core_ptr() const noexcept { return core_.get(); }
    bool operator==(const Channel& o) const noexcept { return core_ == o.core_; }

  private:
    static std::int64_t deadline_after(double seconds);
    detail::ChannelCore& core() const {
        if (!core_) throw std::logic_error("operation on a nil channel");
        return *core_;
    }
    std::shared_ptr<detail::ChannelCore> core_;
};

std::int64_t now_ns() noexcept;

template <class T>
std::int64_t Channel<T>::deadline_after(double seconds) {
    if (seconds < 0) seconds = 0;
    return now_ns() + static_cast<std::int64_t>(seconds * 1e9);
}

/// Go's time.After: a channel (capacity 1) that receives the steady-clock time (ns) once,
/// `seconds` from now. Usable in select as the language's `case after(d):`. Any thread.
Channel<std::int64_t> after(double seconds);

/// Builder for a select statement. Values and sinks must outlive wait().
///
///     std::optional<int> v;
///     Select s;
///     int a = s.recv(ch1, v);
///     int b = s.send(ch2, 42);
///     s.timeout(1.0);
///     int k = s.wait();   // a, b, or kSelectTimeout
class Select {
  public:
    Select() = default;
    Select(const Select&) = delete;
    Select& operator=(const Select&) = delete;

    /// Adds a receive case; on success `sink` holds the value (it stays empty, and
    /// `received(i)` is false, if the channel was closed and drained).
    template <class T>
    int recv(const Channel<T>& ch, std::optional<T>& sink) {
        return add(detail::SelectCase{ch.core_ptr(), false, &sink});
    }
    /// Adds a send case; `value` is moved from only if this case is chosen.
    template <class T>
    int send(const Channel<T>& ch, T& value) {
        return add(detail::SelectCase{ch.core_ptr(), true, &value});
    }
    /// Adds Go's `case <-time.After(seconds)`: wait() returns kSelectTimeout after it.
    void timeout(double seconds) {
        if (seconds < 0) seconds = 0;
        deadline_ = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    }
    /// Adds a default case: wait() returns kSelectDefault at once if nothing is ready.
    void default_case() { default_ = true; }
    /// Runs the select. Raises ChannelClosed if a chosen send case's channel is closed; raises
    /// Cancelled. Returns the chosen case index, kSelectDefault or kSelectTimeout.
    int wait() { return detail::select_impl(data(), n_, default_, deadline_); }
    /// For a chosen recv case: false if it fired because the channel was closed and drained.
    bool received(int i) const { return data()[i].ok; }
    void clear() {
        n_ = 0;
        big_.clear();
        default_ = false;
        deadline_ = INT64_MAX;
    }

  private:
    // Up to kInline cases live in the object (a select in a loop allocates nothing: the
    // allocation and free were a quarter of a two-case select's cost); more go to big_.
    static constexpr int kInline = 4;
    int add(const detail::SelectCase& c) {
        if (n_ < kInline) {
            small_[n_] = c;
        } else {
            if (n_ == kInline) big_.assign(small_, small_ + kInline);
            big_.push_back(c);
        }
        return n_++;
    }
    detail::SelectCase* data() { return n_ <= kInline ? small_ : big_.data(); }
    const detail::SelectCase* data() const { return n_ <= kInline ? small_ : big_.data(); }

    detail::SelectCase small_[kInline];
    std::vector<detail::SelectCase> big_;
    int n_ = 0;
    bool default_ = false;
    std::int64_t deadline_ = INT64_MAX;
};

}  // namespace weft::rt
