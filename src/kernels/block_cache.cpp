#include "kernels/block_cache.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <iterator>
#include <new>

// Cached blocks are poisoned under AddressSanitizer, so a use after free still reports
// although the memory is not returned to the heap.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define COSY_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define COSY_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define COSY_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define COSY_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef COSY_POISON
#define COSY_POISON(p, n) ((void)(p), (void)(n))
#define COSY_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace cosy::cpu {

namespace {

void* heap_allocate(size_t bytes) {
  void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

size_t BlockCache::size_class(size_t bytes) {
  if (bytes <= 64) return 64;
  const size_t top = std::bit_floor(bytes);
  const size_t step = std::max<size_t>(64, top / 8);
  return (bytes + step - 1) / step * step;
}

BlockCache::~BlockCache() { trim(); }

void* BlockCache::allocate(size_t bytes) {
  if (bytes < options_.min_bytes) return heap_allocate(bytes);
  const size_t cls = size_class(bytes);
  {
    std::lock_guard lock(mu_);
    // The smallest cached class that fits, if it wastes less than half the request.
    for (auto it = free_.lower_bound(cls); it != free_.end() && it->first <= cls + cls / 2; ++it) {
      if (it->second.empty()) continue;
      const size_t have = it->first;
      void* p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= have;
      stats_.live_bytes += have;
      ++stats_.hits;
      live_.emplace(p, have);
      COSY_UNPOISON(p, have);
      return p;
    }
  }
  void* p = heap_allocate(cls);
  std::lock_guard lock(mu_);
  ++stats_.misses;
  stats_.live_bytes += cls;
  live_.emplace(p, cls);
  return p;
}

void BlockCache::deallocate(void* p) {
  if (p == nullptr) return;
  std::unique_lock lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) {  // a small block: the heap's
    lock.unlock();
    std::free(p);
    return;
  }
  const size_t cls = it->second;
  live_.erase(it);
  stats_.live_bytes -= cls;
  if (cls > options_.max_cached_bytes) {
    lock.unlock();
    std::free(p);
    return;
  }
  release_cached_locked(cls);
  COSY_POISON(p, cls);
  free_[cls].push_back(p);
  stats_.cached_bytes += cls;
}

void BlockCache::release_cached_locked(size_t need) {
  // The largest classes go first: they are the rarest to be asked for again.
  while (stats_.cached_bytes + need > options_.max_cached_bytes && !free_.empty()) {
    auto last = std::prev(free_.end());
    auto& blocks = last->second;
    if (blocks.empty()) {
      free_.erase(last);
      continue;
    }
    void* p = blocks.back();
    blocks.pop_back();
    stats_.cached_bytes -= last->first;
    COSY_UNPOISON(p, last->first);
    std::free(p);
  }
}

void BlockCache::trim() {
  std::lock_guard lock(mu_);
  for (auto& [cls, blocks] : free_) {
    for (void* p : blocks) {
      COSY_UNPOISON(p, cls);
      std::free(p);
    }
  }
  free_.clear();
  stats_.cached_bytes = 0;
}

BlockCache::Stats BlockCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace cosy::cpu
