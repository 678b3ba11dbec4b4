// memory.h — running out of memory as a Weft error, not a silent abort.
//
// Three layers, because a failed allocation can show up in three ways:
//  1. A request that can never succeed (`"a" * (1 << 40)`, `bytes(1 << 50)`, `s.ljust(n)`):
//     the size is checked against the machine's memory before anything is allocated, and
//     MemoryError is raised at once (check_alloc). Without this, requests that grow a buffer
//     step by step ran until the kernel's OOM killer struck (24 GB for `"x".ljust(1 << 40)`).
//  2. An allocation the allocator refuses: mimalloc's `operator new` aborts the process
//     silently when no new-handler is installed, so install_memory_handlers() installs one
//     that throws std::bad_alloc; the interpreter turns it into MemoryError where natives and
//     instructions are called (Interp::runtime_error_value). The first failure also releases
//     64 MiB of address space held back since startup, so that building the error, unwinding
//     and printing the traceback can still allocate under an address-space limit.
//  3. A bad_alloc that escapes where no Weft code can catch it (inside the runtime): the
//     terminate handler prints one line, "weft: fatal error: out of memory", and exits with
//     status 134 (what an abort gives), instead of an empty stderr.
// Containers that grow without a bound the program chose (an unbounded channel) also call
// memory_headroom_ok() as they grow, so that they raise MemoryError while memory remains.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft {

// Installs the new-handler and the terminate handler described above. Idempotent; called
// once per process by the Vm. Thread-safe.
void install_memory_handlers();

// Takes back the address space that the first allocation failure released for handling it
// (if it was released and can be had again). Cheap when nothing was released: the interpreter
// calls it whenever an `except` handler catches an error. Thread-safe.
void rearm_memory_reserve();

// The largest single object (str, bytes, list storage) the process could ever hold, in
// bytes: the machine's RAM plus swap, or the address-space limit (RLIMIT_AS) if lower.
// Computed once.
uint64_t max_object_bytes();

// Raises MemoryError "cannot allocate <what> of <bytes> bytes (this machine has <N> GiB of
// memory)" when `bytes` exceeds max_object_bytes(). Call it before allocating a size that a
// program chose (a repeat count, a width). `bytes` saturates: pass the exact product when it
// may overflow 64 bits through mul_bytes().
void check_alloc(uint64_t bytes, const char* what);
// a * b, saturated at UINT64_MAX (sizes computed from user-given counts).
inline uint64_t mul_bytes(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

// Is memory still plentiful? False when what the process may still allocate (the kernel's
// MemAvailable, room under the cgroup's memory.max and under RLIMIT_AS, the least of them)
// is below 1/32 of max_object_bytes() or below 64 MiB. Reads /proc and /sys: call it rarely
// (growing containers call it when their size doubles). Thread-safe.
bool memory_headroom_ok();

}  // namespace weft
