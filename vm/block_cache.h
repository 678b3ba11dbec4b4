// block_cache.h — a bounded per-thread cache of freed memory blocks of one size.
//
// Objects made and dropped at a high rate (promises of deferred calls, vm/tasks.cpp; the
// weft::Value handles of the embedding API, embed/embed.cpp) take their memory from here
// instead of malloc and give it back here instead of free. Bounded, so a burst of frees (a list
// of results dropped) goes back to the allocator past `Capacity` blocks. Capacity 0 turns it
// off: AddressSanitizer builds use that, since the sanitizer must see every free to catch a use
// after it. One instance per thread (thread_local); not thread-safe.
#pragma once

#include <cstddef>
#include <new>

namespace weft {

template <int Capacity>
class BlockCache {
  public:
    BlockCache() = default;
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;
    ~BlockCache() {
        gone_ = true;  // the thread is exiting: later frees go to the allocator
        while (n_ > 0) ::operator delete(blocks_[--n_]);
    }
    // A cached block of `size` bytes, or null.
    void* take(std::size_t size) noexcept { return n_ > 0 && size == size_ ? blocks_[--n_] : nullptr; }
    // Keeps the block `p` of `size` bytes for a later take(); false (the caller frees it) when
    // the cache is full, holds blocks of another size, or its thread is exiting.
    bool keep(void* p, std::size_t size) noexcept {
        if (gone_ || n_ >= Capacity || (n_ > 0 && size != size_)) return false;
        size_ = size;
        blocks_[n_++] = p;
        return true;
    }

  private:
    void* blocks_[Capacity > 0 ? Capacity : 1];
    int n_ = 0;
    std::size_t size_ = 0;
    bool gone_ = false;
};

}  // namespace weft
