// Channels and select (see include/weft/runtime/channel.hpp for the semantics).
//
// The structure follows Go's runtime/chan.go: a mutex, a ring buffer, and two FIFO queues of
// waiters (senders with a pointer to the value they offer, receivers with a pointer to where the
// value should go). A waiter lives on its task's stack (a fiber stack stays put while parked), so
// blocking allocates nothing. Unlike Go we do not hand the lock from one side to the other: a
// counterpart pops a waiter, claims its task's wait word (which a timer, a cancellation or
// another case of the same select may have claimed first: then the waiter is stale and skipped),
// moves the value, and only then wakes the task. Unbuffered channels hand values over directly
// from the sender's stack to the receiver's sink; a receive from a full buffer refills the slot
// from the first waiting sender, so FIFO order holds across the buffer and the wait queue.
#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>

#include "runtime/internal.h"
#include "weft/runtime/channel.hpp"

namespace weft::rt::detail {

struct ChanWaiter {
    Task* host = nullptr;
    std::uint32_t gen = 0;
    std::uint32_t case_index = 0;
    void* value = nullptr;  // send: T*; recv: optional<T>*
    bool closed = false;
    bool queued = false;
    ChanWaiter* prev = nullptr;
    ChanWaiter* next = nullptr;
};

namespace {
struct WaitQueue {
    ChanWaiter* head = nullptr;
    ChanWaiter* tail = nullptr;
    void push(ChanWaiter* w) {
        w->prev = tail;
        w->next = nullptr;
        if (tail)
            tail->next = w;
        else
            head = w;
        tail = w;
        w->queued = true;
    }
    void remove(ChanWaiter* w) {
        if (w->prev)
            w->prev->next = w->next;
        else
            head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            tail = w->prev;
        w->prev = w->next = nullptr;
        w->queued = false;
    }
    /// Pops waiters until one can be claimed for its case; nullptr if none.
    ChanWaiter* claim_first() {
        while (ChanWaiter* w = head) {
            remove(w);
            if (try_claim(w->host, w->gen, w->case_index)) return w;
        }
        return nullptr;
    }
};

std::size_t round_up(std::size_t n, std::size_t a) {
    return (n + a - 1) / a * a;
}
}  // namespace

struct ChannelCore::Impl {
    const ElementOps* ops;
    std::size_t cap;
    std::size_t stride;
    mutable SpinLock mu;
    char* buf = nullptr;
    std::size_t buf_slots = 0;
    std::size_t head = 0;
    std::size_t count = 0;
    bool closed = false;
    WaitQueue sendq, recvq;

    Impl(const ElementOps* o, std::size_t c) : ops(o), cap(c) {
        stride = round_up(o->size, o->align);
        // A bounded channel's buffer grows on demand up to `cap` (doubling from 16 slots): a
        // mailbox of 10,000 must not cost 10,000 slots while it holds nothing (an idle actor
        // must stay under 1 KiB, docs/actors.md). Small channels get their whole buffer at once.
        if (cap != kUnbounded && cap > 0) alloc(std::min<std::size_t>(cap, 16));
    }
    ~Impl() {
        while (count) {
            ops->destroy(slot(head));
            head = (head + 1) % buf_slots;
            --count;
        }
        if (buf) ::operator delete(buf, std::align_val_t(std::max(ops->align, alignof(void*))));
    }
    void alloc(std::size_t slots) {
        buf = static_cast<char*>(
            ::operator new(slots* stride, std::align_val_t(std::max(ops->align, alignof(void*)))));
        buf_slots = slots;
    }
    void* slot(std::size_t i) { return buf + i * stride; }
    bool has_room() const { return cap == kUnbounded || count < cap; }
    void push(void* src) {
        if (count == buf_slots) grow();
        ops->move_construct(slot((head + count) % buf_slots), src);
        ++count;
    }
    void pop_into(void* sink) {
        void* s = slot(head);
        ops->put(sink, s);
        ops->destroy(s);
        head = (head + 1) % buf_slots;
        --count;
    }
    void grow() {
        std::size_t n = buf_slots ? buf_slots * 2 : 16;
        if (cap != kUnbounded) n = std::min(n, cap);  // count < cap here, so n > buf_slots
        char* old = buf;
        std::size_t old_slots = buf_slots, old_head = head;
        alloc(n);
        for (std::size_t i = 0; i < count; ++i) {
            void* s = old + ((old_head + i) % old_slots) * stride;
            ops->move_construct(slot(i), s);
            ops->destroy(s);
        }
        head = 0;
        if (old) ::operator delete(old, std::align_val_t(std::max(ops->align, alignof(void*))));
    }

    // Attempts, with `mu` held. On success returns the task to wake (or nullptr).
    // recv: 1 = got a value, 0 = closed and drained, -1 = would block.
    int try_recv_locked(void* sink, Task** wake) {
        if (count > 0) {
            pop_into(sink);
            if (ChanWaiter* w = sendq.claim_first()) {
                push(w->value);
                *wake = w->host;
            }
            return 1;
        }
        if (ChanWaiter* w = sendq.claim_first()) {
            ops->put(sink, w->value);
            *wake = w->host;
            return 1;
        }
        return closed ? 0 : -1;
    }
    // send: 1 = done, -1 = would block; raises ChannelClosed.
    int try_send_locked(void* src, Task** wake) {
        if (closed) return 0;
        if (ChanWaiter* w = recvq.claim_first()) {
            ops->put(w->value, src);
            *wake = w->host;
            return 1;
        }
        if (has_room()) {
            push(src);
            return 1;
        }
        return -1;
    }
};

namespace {
Task* require_task() {
    Task* cur = current();
    if (!cur) throw std::logic_error("blocking channel operation outside a runtime task");
    return cur;
}

__attribute__((noinline)) std::uint64_t select_random() {
    Worker* w = current_worker();
    if (w) return w->next_random();
    static std::atomic<std::uint64_t> seed{88172645463325252ULL};
    std::uint64_t x = seed.fetch_add(0x9E3779B97F4A7C15ULL, std::memory_order_relaxed);
    x ^= x >> 31;
    return x * 0xBF58476D1CE4E5B9ULL;
}
}  // namespace

ChannelCore::ChannelCore(const ElementOps* ops, std::size_t capacity)
    : ops_(ops), cap_(capacity), impl_(new Impl(ops, capacity)) {}

ChannelCore::~ChannelCore() {
    delete impl_;
}

void ChannelCore::send(void* src) {
    Impl& c = *impl_;
    for (;;) {
        Task* wake = nullptr;
        std::unique_lock<SpinLock> lock(c.mu);
        int r = c.try_send_locked(src, &wake);
        if (r == 0) throw ChannelClosed();
        if (r == 1) {
            lock.unlock();
            if (wake) wake_claimed(wake);
            return;
        }
        Task* cur = require_task();
        Task* host = A::host(cur);
        ChanWaiter me;
        me.host = host;
        me.gen = begin_wait(host, "channel send", this);
        me.value = src;
        c.sendq.push(&me);
        lock.unlock();
        std::uint32_t code = wait_for_claim(cur, host, me.gen);
        if (code == 0) {
            if (me.closed) throw ChannelClosed();
            return;
        }
        lock.lock();
        if (me.queued) c.sendq.remove(&me);
        lock.unlock();
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(A::rt(cur)));
        check_cancelled();
    }
}

bool ChannelCore::recv(void* sink, std::int64_t deadline) {
    Impl& c = *impl_;
    for (;;) {
        Task* wake = nullptr;
        std::unique_lock<SpinLock> lock(c.mu);
        int r = c.try_recv_locked(sink, &wake);
        if (r >= 0) {
            lock.unlock();
            if (wake) wake_claimed(wake);
            return r == 1;
        }
        if (deadline != INT64_MAX && now_ns() >= deadline) throw TimeoutError();
        Task* cur = require_task();
        Task* host = A::host(cur);
        RuntimeImpl* rt = A::rt(cur);
        ChanWaiter me;
        me.host = host;
        me.gen = begin_wait(host, "channel recv", this);
        me.value = sink;
        c.recvq.push(&me);
        lock.unlock();
        TimerEntry* te =
            deadline != INT64_MAX ? rt->timers_->add_wake(deadline, host, me.gen) : nullptr;
        std::uint32_t code = wait_for_claim(cur, host, me.gen);
        if (te) rt->timers_->cancel(te);
        if (code == 0) return !me.closed;
        lock.lock();
        if (me.queued) c.recvq.remove(&me);
        lock.unlock();
        if (code == kWokeTimeout) throw TimeoutError();
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt));
        check_cancelled();
    }
}

TryResult ChannelCore::try_send(void* src) {
    Impl& c = *impl_;
    Task* wake = nullptr;
    std::unique_lock<SpinLock> lock(c.mu);
    int r = c.try_send_locked(src, &wake);
    lock.unlock();
    if (wake) wake_claimed(wake);
    return r == 1 ? TryResult::Ok : r == 0 ? TryResult::Closed : TryResult::WouldBlock;
}

TryResult ChannelCore::try_recv(void* sink) {
    Impl& c = *impl_;
    Task* wake = nullptr;
    std::unique_lock<SpinLock> lock(c.mu);
    int r = c.try_recv_locked(sink, &wake);
    lock.unlock();
    if (wake) wake_claimed(wake);
    return r == 1 ? TryResult::Ok : r == 0 ? TryResult::Closed : TryResult::WouldBlock;
}

void ChannelCore::close() {
    Impl& c = *impl_;
    std::vector<Task*> wake;
    {
        std::lock_guard<SpinLock> lock(c.mu);
        if (c.closed) return;
        c.closed = true;
        while (ChanWaiter* w = c.recvq.claim_first()) {
            w->closed = true;
            wake.push_back(w->host);
        }
        while (ChanWaiter* w = c.sendq.claim_first()) {
            w->closed = true;
            wake.push_back(w->host);
        }
    }
    for (Task* h : wake)
        wake_claimed(h);
}

bool ChannelCore::closed() const {
    std::lock_guard<SpinLock> lock(impl_->mu);
    return impl_->closed;
}

std::size_t ChannelCore::len() const {
    std::lock_guard<SpinLock> lock(impl_->mu);
    return impl_->count;
}

// ---------------------------------------------------------------- select

int select_impl(SelectCase* cases, int n, bool has_default, std::int64_t deadline) {
    // Poll order: a uniformly random permutation (Fisher-Yates), as in Go's selectgo.
    constexpr int kSmall = 16;
    int order_small[kSmall];
    std::vector<int> order_big;
    int* order = order_small;
    if (n > kSmall) {
        order_big.resize(static_cast<std::size_t>(n));
        order = order_big.data();
    }
    // Lock order: distinct channels by address.
    ChannelCore::Impl* locks_small[kSmall];
    std::vector<ChannelCore::Impl*> locks_big;
    ChannelCore::Impl** locks = locks_small;
    if (n > kSmall) {
        locks_big.resize(static_cast<std::size_t>(n));
        locks = locks_big.data();
    }
    int nlocks = 0;
    for (int i = 0; i < n; ++i)
        if (cases[i].ch) locks[nlocks++] = cases[i].ch->impl();
    if (nlocks <= kSmall) {
        for (int i = 1; i < nlocks; ++i)  // insertion sort: a select has a handful of channels
            for (int j = i; j > 0 && locks[j] < locks[j - 1]; --j)
                std::swap(locks[j], locks[j - 1]);
    } else {
        std::sort(locks, locks + nlocks);
    }
    nlocks = static_cast<int>(std::unique(locks, locks + nlocks) - locks);
    auto lock_all = [&] {
        for (int i = 0; i < nlocks; ++i)
            locks[i]->mu.lock();
    };
    auto unlock_all = [&] {
        for (int i = nlocks - 1; i >= 0; --i)
            locks[i]->mu.unlock();
    };
    // Waiters on this stack (it stays put while the task is parked): no allocation per select.
    // (Raw storage: constructed only when the select blocks, and only n of them.)
    static_assert(std::is_trivially_destructible_v<ChanWaiter>);
    alignas(ChanWaiter) unsigned char waiters_small[kSmall * sizeof(ChanWaiter)];
    std::vector<ChanWaiter> waiters_big;
    ChanWaiter* waiters = reinterpret_cast<ChanWaiter*>(waiters_small);
    if (n > kSmall) {
        waiters_big.resize(static_cast<std::size_t>(n));
        waiters = waiters_big.data();
    }

    for (;;) {
        for (int i = 0; i < n; ++i)
            order[i] = i;
        for (int i = n - 1; i > 0; --i) {
            int j = static_cast<int>(select_random() % static_cast<std::uint64_t>(i + 1));
            std::swap(order[i], order[j]);
        }
        lock_all();
        for (int k = 0; k < n; ++k) {
            int i = order[k];
            SelectCase& sc = cases[i];
            if (!sc.ch) continue;
            ChannelCore::Impl& c = *sc.ch->impl();
            Task* wake = nullptr;
            if (sc.is_send) {
                int r = c.try_send_locked(sc.value, &wake);
                if (r == 0) {
                    unlock_all();
                    throw ChannelClosed();
                }
                if (r == 1) {
                    unlock_all();
                    if (wake) wake_claimed(wake);
                    return i;
                }
            } else {
                int r = c.try_recv_locked(sc.value, &wake);
                if (r >= 0) {
                    sc.ok = r == 1;
                    unlock_all();
                    if (wake) wake_claimed(wake);
                    return i;
                }
            }
        }
        if (has_default) {
            unlock_all();
            return kSelectDefault;
        }
        if (deadline != INT64_MAX && now_ns() >= deadline) {
            unlock_all();
            return kSelectTimeout;
        }
        Task* cur = current();
        if (!cur) {
            unlock_all();
            throw std::logic_error("blocking select outside a runtime task");
        }
        Task* host = A::host(cur);
        RuntimeImpl* rt = A::rt(cur);
        std::uint32_t gen = begin_wait(host, "select", cases);
        for (int i = 0; i < n; ++i)
            new (&waiters[i]) ChanWaiter{};
        for (int i = 0; i < n; ++i) {
            SelectCase& sc = cases[i];
            if (!sc.ch) continue;
            ChanWaiter& w = waiters[i];
            w.host = host;
            w.gen = gen;
            w.case_index = static_cast<std::uint32_t>(i);
            w.value = sc.value;
            if (sc.is_send)
                sc.ch->impl()->sendq.push(&w);
            else
                sc.ch->impl()->recvq.push(&w);
        }
        unlock_all();
        TimerEntry* te =
            deadline != INT64_MAX ? rt->timers_->add_wake(deadline, host, gen) : nullptr;
        std::uint32_t code = wait_for_claim(cur, host, gen);
        if (te) rt->timers_->cancel(te);
        lock_all();
        for (int i = 0; i < n; ++i) {
            ChanWaiter& w = waiters[i];
            if (!w.queued) continue;
            if (cases[i].is_send)
                cases[i].ch->impl()->sendq.remove(&w);
            else
                cases[i].ch->impl()->recvq.remove(&w);
        }
        unlock_all();
        if (code < kWokeFirst) {
            int i = static_cast<int>(code);
            ChanWaiter& w = waiters[i];
            if (cases[i].is_send) {
                if (w.closed) throw ChannelClosed();
            } else {
                cases[i].ok = !w.closed;
            }
            return i;
        }
        if (code == kWokeTimeout) return kSelectTimeout;
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt));
        check_cancelled();
    }
}

}  // namespace weft::rt::detail

namespace weft::rt {

Channel<std::int64_t> after(double seconds) {
    auto ch = Channel<std::int64_t>::make(1);
    detail::RuntimeImpl* rt = nullptr;
    if (Task* t = detail::current())
        rt = detail::A::rt(t);
    else if (detail::Worker* w = detail::current_worker())
        rt = w->rt;
    if (!rt) throw std::logic_error("after() outside a runtime task");
    rt->timers_->add_callback(detail::deadline_from(seconds), [ch]() mutable {
        std::int64_t now = now_ns();
        ch.try_send(now);
    });
    return ch;
}

}  // namespace weft::rt
