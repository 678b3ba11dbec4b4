// memory.cpp — out-of-memory handling: size checks before allocating, a new-handler that
// throws instead of letting mimalloc abort, a one-line fatal message for a bad_alloc nobody
// catches, and a headroom probe for containers that grow without a bound (see memory.h).
#include "vm/memory.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include "vm/mem_account.h"
#include "vm/native.h"
#include "vm/task_context.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

std::atomic<void (*)(void*)> g_alloc_hook{nullptr};

namespace {

// The address-space limit in bytes, or UINT64_MAX.
uint64_t address_space_limit() {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) return uint64_t(rl.rlim_cur);
    return UINT64_MAX;
}

// The first number after `key` in a text file such as /proc/meminfo ("MemAvailable:"), times
// `unit`; UINT64_MAX when absent. A file holding only "max" (cgroup) is absent too.
uint64_t read_number(const char* path, const char* key, uint64_t unit) {
    FILE* f = std::fopen(path, "r");
    if (!f) return UINT64_MAX;
    char line[256];
    uint64_t out = UINT64_MAX;
    size_t klen = std::strlen(key);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, klen) != 0) continue;
        char* end = nullptr;
        unsigned long long v = std::strtoull(line + klen, &end, 10);
        if (end != line + klen) out = uint64_t(v) * unit;
        break;
    }
    std::fclose(f);
    return out;
}

// Address space held back for handling an allocation failure: building the MemoryError,
// unwinding, printing the traceback all allocate, and when the failure came from a limit on
// address space (RLIMIT_AS) nothing else would be left for them. Reserved PROT_NONE, so it
// costs no memory, only address space; large enough for a fresh mimalloc segment (32 MiB,
// aligned). Released by the first failure, taken again once a handler caught the error
// (rearm_memory_reserve).
constexpr size_t kReserveBytes = size_t(64) << 20;
std::atomic<void*> g_reserve{nullptr};

void release_reserve() {
    if (void* p = g_reserve.exchange(nullptr, std::memory_order_acq_rel)) munmap(p, kReserveBytes);
}

void out_of_memory_new_handler() {
    release_reserve();
    throw std::bad_alloc();
}

std::terminate_handler g_previous_terminate = nullptr;

// A std::bad_alloc that no handler caught (thrown inside the runtime, or by a destructor) ends
// the process with one line saying so; anything else goes to the previous handler (which
// prints the exception and aborts).
[[noreturn]] void terminate_handler() {
    if (std::exception_ptr ep = std::current_exception()) {
        try {
            std::rethrow_exception(ep);
        } catch (const std::bad_alloc&) {
            static const char kMsg[] = "weft: fatal error: out of memory\n";
            ssize_t ignored = write(2, kMsg, sizeof kMsg - 1);
            (void)ignored;
            std::fflush(stdout);
            _exit(134);
        } catch (...) {
        }
    }
    if (g_previous_terminate) g_previous_terminate();
    std::abort();
}

}  // namespace

void install_memory_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        std::set_new_handler(out_of_memory_new_handler);
        g_previous_terminate = std::set_terminate(terminate_handler);
        rearm_memory_reserve();
    });
}

void rearm_memory_reserve() {
    if (g_reserve.load(std::memory_order_relaxed)) return;
    void* p = mmap(nullptr, kReserveBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    void* expected = nullptr;
    if (!g_reserve.compare_exchange_strong(expected, p, std::memory_order_acq_rel)) munmap(p, kReserveBytes);
}

uint64_t max_object_bytes() {
    static const uint64_t limit = [] {
        struct sysinfo si;
        uint64_t total = UINT64_MAX;
        if (sysinfo(&si) == 0) total = (uint64_t(si.totalram) + uint64_t(si.totalswap)) * si.mem_unit;
        uint64_t cg = read_number("/sys/fs/cgroup/memory.max", "", 1);
        if (cg < total) total = cg;
        uint64_t as = address_space_limit();
        return as < total ? as : total;
    }();
    return limit;
}

void check_alloc(uint64_t bytes, const char* what) {
    // An embedding host's memory limit (weft::Limits::max_memory): a large block (1 MiB or more)
    // that would take the Engine past it is refused before allocating, as a MemoryError; past
    // the limit already, the call is stopped as at its next safepoint.
    if (CallBudget* b = current_budget(); b && b->mem) {
        std::int64_t held = b->mem->total();
        if (!b->check_memory()) rt::check_cancelled();
        if (bytes >= (uint64_t(1) << 20) && (bytes > uint64_t(INT64_MAX) || std::int64_t(bytes) > b->mem_limit - held))
            throw WeftError(ErrorKind::MemoryError,
                            std::string("cannot allocate ") + what + " of " +
                                (bytes == UINT64_MAX ? std::string("more than 2**64") : std::to_string(bytes)) +
                                " bytes (the engine's memory limit is " + std::to_string(b->mem_limit) +
                                " bytes and it holds " + std::to_string(held) + ")");
    }
    uint64_t limit = max_object_bytes();
    if (bytes <= limit) return;
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.1f", double(limit) / double(1ull << 30));
    throw WeftError(ErrorKind::MemoryError, std::string("cannot allocate ") + what + " of " +
                                                (bytes == UINT64_MAX ? std::string("more than 2**64")
                                                                     : std::to_string(bytes)) +
                                                " bytes (the process can use at most " + gib + " GiB)");
}

bool memory_headroom_ok() {
    uint64_t avail = read_number("/proc/meminfo", "MemAvailable:", 1024);
    uint64_t cg_max = read_number("/sys/fs/cgroup/memory.max", "", 1);
    if (cg_max != UINT64_MAX) {
        uint64_t cur = read_number("/sys/fs/cgroup/memory.current", "", 1);
        if (cur != UINT64_MAX) {
            uint64_t room = cur < cg_max ? cg_max - cur : 0;
            if (room < avail) avail = room;
        }
    }
    uint64_t as = address_space_limit();
    if (as != UINT64_MAX) {
        uint64_t used = read_number("/proc/self/status", "VmSize:", 1024);
        if (used != UINT64_MAX) {
            uint64_t room = used < as ? as - used : 0;
            if (room < avail) avail = room;
        }
    }
    if (avail == UINT64_MAX) return true;  // nothing to go by
    uint64_t floor = max_object_bytes() / 32;
    if (floor < (uint64_t(64) << 20)) floor = uint64_t(64) << 20;
    return avail >= floor;
}

}  // namespace weft

// ---------------------------------------------------------------------------
// operator new
//
// The process links mimalloc (cli/CMakeLists.txt), whose `operator new` aborts with no message
// when an allocation fails: it looks up the C++ new-handler through a weak stub of
// std::get_new_handler that the dynamic linker resolves to mimalloc's own, which always returns
// null, so set_new_handler() cannot reach it. These replacements (which the executable's
// definitions make the process-wide ones) allocate with malloc, which mimalloc provides and
// which returns null on failure, and throw std::bad_alloc as the standard says. The nothrow
// forms stay mimalloc's (or the C++ library's); operator delete is vm/mem_account.cpp's (it
// frees with free()) or the C++ library's (which does the same). Not under sanitizers, whose allocators check that new pairs with
// delete.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <cstdlib>

namespace {
// An embedding host's memory accounting (vm/mem_account.h), once some Engine counts.
[[gnu::always_inline]] inline void* counted(void* p) {
    if (auto hook = weft::g_alloc_hook.load(std::memory_order_relaxed)) hook(p);
    return p;
}
[[gnu::always_inline]] inline void* new_or_throw(std::size_t n) {
    if (void* p = std::malloc(n ? n : 1)) return counted(p);
    for (;;) {
        std::new_handler h = std::get_new_handler();
        if (!h) throw std::bad_alloc();
        h();
        if (void* p = std::malloc(n ? n : 1)) return counted(p);
    }
}
[[gnu::always_inline]] inline void* new_aligned_or_throw(std::size_t n, std::align_val_t al) {
    std::size_t a = std::size_t(al);
    std::size_t size = (n + a - 1) / a * a;  // aligned_alloc wants a multiple of the alignment
    if (size < n) throw std::bad_alloc();
    if (void* p = std::aligned_alloc(a, size ? size : a)) return counted(p);
    if (std::new_handler h = std::get_new_handler()) h();  // ours throws
    throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return new_or_throw(n); }
void* operator new[](std::size_t n) { return new_or_throw(n); }
void* operator new(std::size_t n, std::align_val_t al) { return new_aligned_or_throw(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return new_aligned_or_throw(n, al); }
#endif
