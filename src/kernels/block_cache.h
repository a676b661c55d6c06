// A caching allocator for the CPU backend's memory, as CUDA's caching allocator is for a
// GPU's. A freed block is kept and handed to a later request of its size class or of one
// up to a third smaller, so a new stream's state lands on pages the process has already
// touched: a fresh page costs a kernel fault and a zero-fill, which was 7 % of a voice's
// first streaming flow call (every key/value history of the new stream is fresh memory).
//
// Blocks below `min_bytes` go straight to the C heap, which already reuses small blocks.
// At most `max_cached_bytes` stay cached; trim() returns them all. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cosy::cpu {

class BlockCache {
 public:
  struct Options {
    size_t min_bytes = size_t{64} << 10;        // smaller blocks are not cached
    size_t max_cached_bytes = size_t{1} << 30;  // free blocks held, at most
  };
  struct Stats {
    size_t cached_bytes = 0;  // free blocks held for reuse
    size_t live_bytes = 0;    // cached-size blocks handed out (rounded to their class)
    int64_t hits = 0;         // requests served from the cache
    int64_t misses = 0;       // requests of a cached size that took fresh memory
  };

  BlockCache() : BlockCache(Options{}) {}
  explicit BlockCache(Options options) : options_(options) {}
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // 64-byte aligned, uninitialised. Throws std::bad_alloc when the heap is out.
  void* allocate(size_t bytes);
  void deallocate(void* p);
  void trim();  // frees every cached block
  Stats stats() const;

  // The size a request is rounded up to: eight classes per power of two (at most 12.5 %
  // more than asked), so blocks of nearby sizes serve each other.
  static size_t size_class(size_t bytes);

 private:
  void release_cached_locked(size_t need);  // frees cached blocks until `need` more fit

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> live_;     // handed-out cached-size blocks
  std::map<size_t, std::vector<void*>> free_;  // by class size
  Stats stats_;
};

}  // namespace cosy::cpu
