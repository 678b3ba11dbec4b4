// mem_account.h — per-Engine heap accounting for the embedding API's Limits::max_memory.
//
// An Engine that has a memory limit (its own or a call's) owns a MemAccount. While a task of
// such a call runs, every C++ heap allocation and free made on its thread is charged to the
// account (operator new/delete, or the sanitizers' malloc/free hooks in ASan/TSan builds): the
// account holds the bytes the Engine's scripts allocated and still hold — their objects, the
// containers' storage, their interpreters' frames. The call's tasks check it at safepoints (every
// 64) and in long natives' cancellation polls, and a single allocation a program sizes
// (`"x" * n`, check_alloc) is refused beforehand.
//
// What is not counted: memory allocated outside the Engine's tasks (the host's conversions into
// Weft values, the runtime's scheduler), fiber stacks (mmap), C libraries' malloc in
// non-sanitizer builds (SQLite, curl). Frees made outside the tasks are charged only where the
// embedding layer knows the Engine (a host dropping a weft::Value); others are not, so the count
// can drift by what such frees release (small: task records freed by the scheduler).
//
// Nothing here runs until an account is first used (mem_accounting_enable): a program that
// never embeds pays one relaxed load per `new`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft {

// The bytes an Engine holds, in per-thread shards (a shared counter bumped by every allocation
// on every worker would bounce one cache line between them).
struct MemAccount {
    static constexpr int kShards = 8;
    struct alignas(64) Shard {
        std::atomic<std::int64_t> bytes{0};
    };
    Shard shards[kShards];
    // Adds `delta` (negative for a free) to this thread's shard. Lock-free, any thread.
    void add(std::int64_t delta) noexcept;
    // The sum of the shards (a moment's view while other threads allocate).
    std::int64_t total() const noexcept;
    // total(), also kept in `peak` when higher (the limit checks sample it).
    std::int64_t sample() noexcept;
    std::atomic<std::int64_t> peak{0};
};

// Turns the allocation hooks on (process-wide, once; idempotent, thread-safe). Called when an
// Engine first creates an account.
void mem_accounting_enable();

// The account charged on this thread: the override (below) if set, else the running task's
// call budget's, else none.
MemAccount* current_mem_account() noexcept;

// Makes a host thread charge what it frees to `a` while the scope lasts (the embedding layer
// dropping an Engine's values outside its tasks). Nests.
class MemAccountScope {
  public:
    explicit MemAccountScope(MemAccount* a) noexcept;
    ~MemAccountScope();
    MemAccountScope(const MemAccountScope&) = delete;
    MemAccountScope& operator=(const MemAccountScope&) = delete;

  private:
    MemAccount* prev_;
};

// Installed by mem_accounting_enable(): called by vm/memory.cpp's operator new with each new
// block (null until then).
extern std::atomic<void (*)(void*)> g_alloc_hook;

}  // namespace weft
