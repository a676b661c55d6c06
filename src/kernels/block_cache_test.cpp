#include "kernels/block_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "core/device_array.h"
#include "kernels/cpu_backend.h"

namespace cosy::cpu {
namespace {

constexpr size_t kKiB = 1024;

TEST(BlockCache, SizeClassesRoundUpByAtMostAnEighth) {
  size_t last = 0;
  for (size_t bytes = 1; bytes < (size_t{64} << 20); bytes = bytes * 9 / 8 + 1) {
    const size_t cls = BlockCache::size_class(bytes);
    EXPECT_GE(cls, bytes);
    EXPECT_LE(cls, std::max<size_t>(64, bytes + bytes / 8 + 64)) << bytes;
    EXPECT_EQ(cls % 64, 0u);
    EXPECT_GE(cls, last);  // monotonic
    last = cls;
  }
  // Nearby sizes share a class; one an eighth larger does not.
  EXPECT_EQ(BlockCache::size_class(160 * kKiB), BlockCache::size_class(150 * kKiB));
  EXPECT_NE(BlockCache::size_class(160 * kKiB), BlockCache::size_class(190 * kKiB));
}

TEST(BlockCache, AFreedBlockServesTheNextRequestOfItsClass) {
  BlockCache cache;
  void* a = cache.allocate(160 * kKiB);
  std::memset(a, 1, 160 * kKiB);
  cache.deallocate(a);
  EXPECT_EQ(cache.stats().cached_bytes, BlockCache::size_class(160 * kKiB));
  void* b = cache.allocate(150 * kKiB);  // same class
  EXPECT_EQ(b, a);
  EXPECT_EQ(cache.stats().hits, 1);
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
  void* c = cache.allocate(400 * kKiB);  // another class: fresh memory
  EXPECT_NE(c, a);
  EXPECT_EQ(cache.stats().misses, 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 64, 0u);
  cache.deallocate(b);
  cache.deallocate(c);
  EXPECT_EQ(cache.stats().live_bytes, 0u);
  cache.trim();
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(BlockCache, SmallBlocksGoToTheHeap) {
  BlockCache cache;
  void* p = cache.allocate(1000);
  cache.deallocate(p);
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
  EXPECT_EQ(cache.stats().misses, 0);
}

TEST(BlockCache, HoldsNoMoreThanItsLimit) {
  BlockCache::Options o;
  o.max_cached_bytes = 1024 * kKiB;
  BlockCache cache(o);
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(cache.allocate(256 * kKiB));
  for (void* p : blocks) cache.deallocate(p);
  EXPECT_LE(cache.stats().cached_bytes, o.max_cached_bytes);
  EXPECT_EQ(cache.stats().cached_bytes, 4 * BlockCache::size_class(256 * kKiB));
  // Larger than the whole limit: never cached.
  cache.deallocate(cache.allocate(2048 * kKiB));
  EXPECT_LE(cache.stats().cached_bytes, o.max_cached_bytes);

  BlockCache::Options none;
  none.max_cached_bytes = 0;
  BlockCache off(none);
  off.deallocate(off.allocate(256 * kKiB));
  EXPECT_EQ(off.stats().cached_bytes, 0u);
}

TEST(BlockCache, ThreadsAllocateAndFreeConcurrently) {
  BlockCache::Options o;
  o.max_cached_bytes = 4096 * kKiB;
  BlockCache cache(o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 200; ++i) {
        const size_t bytes = (64 + static_cast<size_t>((t * 7 + i) % 5) * 40) * kKiB;
        auto* p = static_cast<unsigned char*>(cache.allocate(bytes));
        p[0] = p[bytes - 1] = static_cast<unsigned char>(i);
        EXPECT_EQ(p[0], p[bytes - 1]);
        cache.deallocate(p);
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = cache.stats();
  EXPECT_EQ(s.live_bytes, 0u);
  EXPECT_EQ(s.hits + s.misses, 800);
  EXPECT_GT(s.hits, 0);
  EXPECT_LE(s.cached_bytes, o.max_cached_bytes);
}

TEST(BlockCache, TheCpuBackendReusesAFinishedStreamsMemory) {
  auto b = create_cpu_backend(1);
  const size_t n = size_t{80} * 512;  // one key history of a first streaming flow chunk
  float* first = nullptr;
  {
    DeviceArray<float> state(*b, n);
    first = state.data();
  }
  DeviceArray<float> next(*b, n);
  EXPECT_EQ(next.data(), first);
}

#if defined(__SANITIZE_ADDRESS__)
TEST(BlockCacheDeathTest, ACachedBlockIsPoisonedForAddressSanitizer) {
  BlockCache cache;
  auto* p = static_cast<volatile char*>(cache.allocate(128 * kKiB));
  cache.deallocate(const_cast<char*>(p));
  EXPECT_DEATH(p[100] = 1, "use-after-poison");
}
#endif

}  // namespace
}  // namespace cosy::cpu
