// Chase-Lev work-stealing deque of Task pointers.
//
// The owner pushes and pops at the bottom (LIFO, cache-warm: the work-first principle); thieves
// take from the top (FIFO: the oldest, usually biggest, piece of work). Algorithm: D. Chase and
// Y. Lev, "Dynamic Circular Work-Stealing Deque", SPAA 2005; memory orders from N. M. Lê,
// A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
// Models", PPoPP 2013. Deviation: bottom is stored with release (free on x86) so that
// ThreadSanitizer, which does not model standalone fences, sees the publication of a task.
// Old arrays are kept until destruction (a thief may still read one), which costs at most the
// sum of a geometric series of the final size.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace weft::rt::detail {

// ThreadSanitizer does not model standalone fences; under TSan the fences are replaced by
// sequentially consistent accesses, which are at least as strong.
#if defined(WEFT_TSAN)
inline void deque_fence(std::memory_order) noexcept {}
constexpr std::memory_order kDequeRelaxed = std::memory_order_seq_cst;
#else
inline void deque_fence(std::memory_order o) noexcept {
    std::atomic_thread_fence(o);
}
constexpr std::memory_order kDequeRelaxed = std::memory_order_relaxed;
#endif

template <class T>
class WorkDeque {
  public:
    explicit WorkDeque(std::int64_t capacity = 256) {
        arrays_.push_back(std::make_unique<Array>(capacity));
        array_.store(arrays_.back().get(), std::memory_order_relaxed);
    }

    /// Owner only.
    void push(T* x) {
        std::int64_t b = bottom_.load(kDequeRelaxed);
        std::int64_t t = top_.load(std::memory_order_acquire);
        Array* a = array_.load(std::memory_order_relaxed);
        if (b - t > a->size - 1) a = grow(a, t, b);
        a->put(b, x);
        deque_fence(std::memory_order_release);
        bottom_.store(b + 1, std::memory_order_release);
    }

    /// Owner only. nullptr when empty.
    T* pop() {
        std::int64_t b = bottom_.load(kDequeRelaxed) - 1;
        Array* a = array_.load(std::memory_order_relaxed);
        bottom_.store(b, kDequeRelaxed);
        deque_fence(std::memory_order_seq_cst);
        std::int64_t t = top_.load(kDequeRelaxed);
        T* x = nullptr;
        if (t <= b) {
            x = a->get(b);
            if (t == b) {
                if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed))
                    x = nullptr;
                bottom_.store(b + 1, kDequeRelaxed);
            }
        } else {
            bottom_.store(b + 1, kDequeRelaxed);
        }
        return x;
    }

    /// Any thread. nullptr when empty or when it lost a race (caller may retry elsewhere).
    T* steal() {
        std::int64_t t = top_.load(std::memory_order_acquire);
        deque_fence(std::memory_order_seq_cst);
        std::int64_t b = bottom_.load(std::memory_order_acquire);
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
        std::int64_t b = bottom_.load(kDequeRelaxed);
        std::int64_t t = top_.load(kDequeRelaxed);
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
