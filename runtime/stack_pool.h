// Pool of fiber stacks.
//
// Each stack is an mmap'ed region reserved with MAP_NORESERVE, so the kernel commits pages only
// when the fiber touches them: a fresh task costs the one or two pages its top frames use, not
// its 256 KiB reservation. Below each stack lies a PROT_NONE guard page; an overflow faults
// there and the SIGSEGV handler (on an alternate signal stack) reports it instead of letting it
// corrupt a neighbour. Each guarded stack costs two kernel VMAs and Linux caps a process at
// vm.max_map_count (65,530 by default), so past a quarter of that budget the pool hands out
// unguarded stacks carved from large chunks, protected by a canary word checked when the fiber
// switches out and when it ends (detection after the fact, but still loud). Freed stacks are
// reused (per-worker caches first, then a shared list): mmap/munmap per task would cost more
// than the task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace weft::rt::detail {

struct Stack {
    void* lo = nullptr;  // lowest usable byte
    std::size_t size = 0;
    bool guarded = false;
    void* tsan_fiber = nullptr;  // ThreadSanitizer fiber context, reused with the stack
};

constexpr std::uint64_t kStackCanary = 0x5745465453544b21ULL;  // "WEFTSTK!"

class StackPool {
  public:
    explicit StackPool(std::size_t stack_size);
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    /// A stack of `stack_size()` usable bytes. Thread-safe. Aborts if memory is exhausted.
    Stack acquire();
    /// Returns a stack to the shared list. Thread-safe.
    void release(const Stack& s);
    std::size_t stack_size() const noexcept { return size_; }
    static std::size_t page_size() noexcept;

  private:
    std::size_t size_;
    std::size_t max_guarded_;
    std::mutex mu_;
    std::vector<Stack> free_;
    std::size_t guarded_ = 0;
    std::vector<std::pair<void*, std::size_t>> chunks_;  // unguarded chunk mappings
    std::vector<Stack> all_guarded_;
};

/// Installs (once per process) the SIGSEGV handler that reports guard-page hits; faults that
/// are not guard-page hits go to the handler installed before it (chained), or to the previous
/// default disposition. Only when RuntimeOptions::install_signal_handlers is set (the CLI sets
/// it; an embedding host need not). Per thread: `install_alt_stack()` gives the handler a stack.
void install_overflow_handler();
/// Whether the current SIGSEGV disposition is the overflow handler (for tests).
bool overflow_handler_installed() noexcept;
void install_alt_stack();
/// The stack the current thread is running a fiber on (for the handler); nullptr otherwise.
void set_running_stack(const void* lo, std::size_t size, std::uint64_t task_id) noexcept;

}  // namespace weft::rt::detail
