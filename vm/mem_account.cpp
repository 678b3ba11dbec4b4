// mem_account.cpp — per-Engine heap accounting (see mem_account.h): the shards, the account of
// the running task, and the allocation hooks — operator new's hook plus replacements of every
// operator delete in plain builds, the malloc/free hooks of the sanitizers' allocators in ASan
// and TSan builds (whose allocators check that new pairs with their own delete).
#include "vm/mem_account.h"

#include <malloc.h>

#include <cstdlib>
#include <mutex>
#include <new>

#include "vm/task_context.h"
#include "weft/runtime/task.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_MEM_SANITIZER 1
// From the sanitizers' <sanitizer/allocator_interface.h> (not installed with every compiler).
extern "C" {
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                              void (*free_hook)(const volatile void*));
std::size_t __sanitizer_get_allocated_size(const volatile void* p);
}
#endif

namespace weft {

namespace {

std::atomic<bool> g_counting{false};
thread_local MemAccount* t_override = nullptr;

// This thread's shard: threads are spread over the shards in the order they first count.
int shard_index() noexcept {
    static std::atomic<unsigned> next{0};
    thread_local int index = int(next.fetch_add(1, std::memory_order_relaxed) % MemAccount::kShards);
    return index;
}

#if defined(WEFT_MEM_SANITIZER)
void san_malloc_hook(const volatile void* p, std::size_t n) {
    if (!p) return;
    if (MemAccount* a = current_mem_account()) a->add(std::int64_t(n));
}
void san_free_hook(const volatile void* p) {
    if (!p || !g_counting.load(std::memory_order_relaxed)) return;
    if (MemAccount* a = current_mem_account())
        a->add(-std::int64_t(__sanitizer_get_allocated_size(p)));
}
#else
void alloc_hook(void* p) {
    if (MemAccount* a = current_mem_account()) a->add(std::int64_t(malloc_usable_size(p)));
}
#endif

}  // namespace

void MemAccount::add(std::int64_t delta) noexcept {
    shards[shard_index()].bytes.fetch_add(delta, std::memory_order_relaxed);
}

std::int64_t MemAccount::total() const noexcept {
    std::int64_t sum = 0;
    for (const Shard& s : shards) sum += s.bytes.load(std::memory_order_relaxed);
    return sum;
}

std::int64_t MemAccount::sample() noexcept {
    std::int64_t t = total();
    std::int64_t p = peak.load(std::memory_order_relaxed);
    while (t > p && !peak.compare_exchange_weak(p, t, std::memory_order_relaxed)) {
    }
    return t;
}

MemAccount* current_mem_account() noexcept {
    if (t_override) return t_override;
    rt::Task* t = rt::current_task();
    auto* c = t ? static_cast<TaskContext*>(t->user_data()) : nullptr;
    return c && c->budget ? c->budget->mem : nullptr;
}

MemAccountScope::MemAccountScope(MemAccount* a) noexcept : prev_(t_override) {
    t_override = a;
}

MemAccountScope::~MemAccountScope() {
    t_override = prev_;
}

void mem_accounting_enable() {
    static std::once_flag once;
    std::call_once(once, [] {
#if defined(WEFT_MEM_SANITIZER)
        __sanitizer_install_malloc_and_free_hooks(san_malloc_hook, san_free_hook);
#else
        g_alloc_hook.store(alloc_hook, std::memory_order_relaxed);
#endif
        g_counting.store(true, std::memory_order_release);
    });
}

}  // namespace weft

#if !defined(WEFT_MEM_SANITIZER)
// Every operator delete: the block's usable size is taken back from the account of the thread's
// task (when counting is on), then the block goes back to malloc, from which vm/memory.cpp's
// operator new took it. Before counting starts, a relaxed load and free().
namespace {
[[gnu::always_inline]] inline void counted_free(void* p) noexcept {
    if (p && weft::g_counting.load(std::memory_order_relaxed))
        if (weft::MemAccount* a = weft::current_mem_account()) a->add(-std::int64_t(malloc_usable_size(p)));
    std::free(p);
}
}  // namespace

void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
#endif
