// Fiber stack pool: mmap'ed, lazily committed stacks with guard pages (see stack_pool.h).
#include "runtime/stack_pool.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::rt::detail {

namespace {
constexpr std::size_t kChunkStacks = 64;

std::size_t read_max_map_count() {
    std::ifstream f("/proc/sys/vm/max_map_count");
    std::size_t n = 0;
    if (f >> n) return n;
    return 65530;
}

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "weft runtime: %s: %s\n", what, std::strerror(errno));
    std::abort();
}
}  // namespace

std::size_t StackPool::page_size() noexcept {
    static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return p;
}

StackPool::StackPool(std::size_t stack_size) {
    std::size_t p = page_size();
    if (stack_size < 4 * p) stack_size = 4 * p;
    size_ = (stack_size + p - 1) / p * p;
    max_guarded_ = read_max_map_count() / 4;
}

StackPool::~StackPool() {
#if defined(WEFT_TSAN)
    // TSan fiber contexts count against its thread limit: free those cached with the stacks.
    for (auto& s : free_)
        if (s.tsan_fiber) __tsan_destroy_fiber(s.tsan_fiber);
#endif
    for (auto& s : all_guarded_) {
        std::size_t p = page_size();
        munmap(static_cast<char*>(s.lo) - p, s.size + p);
    }
    for (auto& [base, len] : chunks_)
        munmap(base, len);
}

Stack StackPool::acquire() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!free_.empty()) {
            Stack s = free_.back();
            free_.pop_back();
            return s;
        }
        if (guarded_ < max_guarded_) {
            ++guarded_;
            std::size_t p = page_size();
            void* base = mmap(nullptr, size_ + p, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (base == MAP_FAILED) die("mmap of a fiber stack failed");
            if (mprotect(base, p, PROT_NONE) != 0) die("mprotect of a guard page failed");
            Stack s{static_cast<char*>(base) + p, size_, true};
            all_guarded_.push_back(s);
            return s;
        }
        // Out of VMA budget for guarded stacks: carve unguarded ones from one big mapping.
        std::size_t len = size_ * kChunkStacks;
        void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) die("mmap of a fiber stack chunk failed");
        chunks_.emplace_back(base, len);
        for (std::size_t i = 1; i < kChunkStacks; ++i)
            free_.push_back(Stack{static_cast<char*>(base) + i * size_, size_, false});
        // The canaries are written when a stack is handed to a fiber (start_fiber), not here:
        // writing all 64 would make 64 bottom pages resident before any of them is used.
        return Stack{base, size_, false};
    }
}

void StackPool::release(const Stack& s) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(s);
}

// ---- guard-page overflow reporting ----

namespace {
thread_local const void* tl_stack_lo = nullptr;
thread_local std::uint64_t tl_task_id = 0;
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
struct sigaction g_previous;

void on_segv(int sig, siginfo_t* info, void* ctx) {
    auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    auto lo = reinterpret_cast<std::uintptr_t>(tl_stack_lo);
    std::size_t p = StackPool::page_size();
    if (lo != 0 && addr < lo && addr + 16 * p >= lo) {
        char msg[160];
        int n = std::snprintf(msg, sizeof msg,
                              "weft runtime: stack overflow in task #%llu (fiber stack guard page "
                              "hit); raise RuntimeOptions::stack_size\n",
                              static_cast<unsigned long long>(tl_task_id));
        if (n > 0) (void)!write(2, msg, static_cast<std::size_t>(n));
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    // Not ours: chain to the handler that was installed before ours (a host such as a JVM uses
    // SIGSEGV itself), or, if that was the default or ignore disposition, restore it and return
    // so that the fault happens again and kills the process as it would have without us.
    if (g_previous.sa_flags & SA_SIGINFO) {
        if (g_previous.sa_sigaction) {
            g_previous.sa_sigaction(sig, info, ctx);
            return;
        }
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(sig);
        return;
    }
    sigaction(SIGSEGV, &g_previous, nullptr);
}
#endif
}  // namespace

void install_overflow_handler() {
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &g_previous);
    });
#endif
}

bool overflow_handler_installed() noexcept {
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
    struct sigaction cur;
    if (sigaction(SIGSEGV, nullptr, &cur) != 0) return false;
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_segv;
#else
    return false;
#endif
}

void install_alt_stack() {
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
    static thread_local bool done = false;
    if (done) return;
    done = true;
    std::size_t len = 64 * 1024;
    void* mem = std::malloc(len);  // lives as long as the thread
    stack_t ss;
    ss.ss_sp = mem;
    ss.ss_size = len;
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
#endif
}

void set_running_stack(const void* lo, std::size_t, std::uint64_t task_id) noexcept {
    tl_stack_lo = lo;
    tl_task_id = task_id;
}

}  // namespace weft::rt::detail
