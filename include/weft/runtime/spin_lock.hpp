// A one-byte lock for the runtime's short critical sections (task, scope and channel state).
//
// Uncontended it costs one exchange and one store, against the two atomic read-modify-writes
// and the function calls of a pthread mutex, and it fits in the padding of the objects it
// guards. Critical sections it protects never block and are a few dozen instructions long;
// under contention it spins briefly and then yields the CPU, so a preempted holder (the runtime
// may share cores with other processes) costs a few yields rather than a burnt time slice.
// Satisfies Lockable (works with std::lock_guard / std::unique_lock).
#pragma once

#include <atomic>
#include <thread>

namespace weft::rt {

class SpinLock {
  public:
    void lock() noexcept {
        for (int spins = 0;; ++spins) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            while (locked_.load(std::memory_order_relaxed)) {
                if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                    __builtin_ia32_pause();
#endif
                } else {
                    std::this_thread::yield();
                }
            }
        }
    }
    bool try_lock() noexcept {
        return !locked_.load(std::memory_order_relaxed) &&
               !locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept {
        locked_.store(false, std::memory_order_release);
    }

  private:
    std::atomic<bool> locked_{false};
};

}  // namespace weft::rt
