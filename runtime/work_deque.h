// Chase-Lev work-stealing deque of Task pointers.
//
// The owner pushes and pops at the bottom (LIFO, cache-warm: the work-first principle); thieves
// take from the top (FIFO: the oldest, usually biggest, piece of work). Algorithm: D. Chase and
// Y. Lev, "Dynamic Circular Work-Stealing Deque", SPAA 2005; memory orders after N. M. Lê,
// A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
// Models", PPoPP 2013, with two deviations: push() publishes with a release store of bottom
// instead of a release fence plus relaxed store, and the seq_cst fences of pop() and steal() are
// replaced by sequentially consistent accesses (an exchange on bottom in pop(), seq_cst loads in
// steal()). The C++ model orders those just as well; on x86 they cost a locked xchg instead of
// an mfence, and ThreadSanitizer, which ignores fences, understands them.
// Old arrays are kept until destruction (a thief may still read one), which costs at most the
// sum of a geometric series of the final size.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace weft::rt::detail {

template <class T>
class WorkDeque {
  public:
    explicit WorkDeque(std::int64_t capacity = 256) {
        arrays_.push_back(std::make_unique<Array>(capacity));
        array_.store(arrays_.back().get(), std::memory_order_relaxed);
    }

    /// Owner only.
    void push(T* x) {
        std::int64_t b = bottom_.load(std::memory_order_relaxed);
        std::int64_t t = top_.load(std::memory_order_acquire);
        Array* a = array_.load(std::memory_order_relaxed);
        if (b - t > a->size - 1) a = grow(a, t, b);
        a->put(b, x);
        bottom_.store(b + 1, std::memory_order_release);
    }

    /// Owner only. nullptr when empty.
    T* pop() {
        std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
        Array* a = array_.load(std::memory_order_relaxed);
        bottom_.exchange(b, std::memory_order_seq_cst);
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        T* x = nullptr;
        if (t <= b) {
            x = a->get(b);
            if (t == b) {
                if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed))
                    x = nullptr;
                bottom_.store(b + 1, std::memory_order_relaxed);
            }
        } else {
            bottom_.store(b + 1, std::memory_order_relaxed);
        }
        return x;
    }

    /// Any thread. nullptr when empty or when it lost a race (caller may retry elsewhere).
    T* steal() {
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        std::int64_t b = bottom_.load(std::memory_order_seq_cst);
        if (t < b) {
            Array* a = array_.load(std::memory_order_acquire);
            T* x = a->get(t);
            if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                return nullptr;
            return x;
        }
        return nullptr;
    }

    /// Approximate size (any thread).
    std::int64_t size() const noexcept {
        std::int64_t b = bottom_.load(std::memory_order_relaxed);
        std::int64_t t = top_.load(std::memory_order_relaxed);
        return b > t ? b - t : 0;
    }

  private:
    struct Array {
        explicit Array(std::int64_t n) : size(n), mask(n - 1), slots(new std::atomic<T*>[n]) {}
        std::int64_t size, mask;
        std::unique_ptr<std::atomic<T*>[]> slots;
        T* get(std::int64_t i) const { return slots[i & mask].load(std::memory_order_relaxed); }
        void put(std::int64_t i, T* x) { slots[i & mask].store(x, std::memory_order_relaxed); }
    };

    Array* grow(Array* a, std::int64_t t, std::int64_t b) {
        auto na = std::make_unique<Array>(a->size * 2);
        for (std::int64_t i = t; i < b; ++i)
            na->put(i, a->get(i));
        Array* raw = na.get();
        arrays_.push_back(std::move(na));
        array_.store(raw, std::memory_order_release);
        return raw;
    }

    alignas(64) std::atomic<std::int64_t> top_{0};
    alignas(64) std::atomic<std::int64_t> bottom_{0};
    std::atomic<Array*> array_;
    std::vector<std::unique_ptr<Array>> arrays_;  // owner-only
};

}  // namespace weft::rt::detail
