#include "server/memory_trimmer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

namespace cosy::server {
namespace {

// A freed large heap block goes back to the system; the trimmer's thread stops at once.
TEST(MemoryTrimmer, TrimsAndStopsPromptly) {
  {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 64; ++i) blocks.emplace_back(new char[64 << 10]());
  }  // freed below glibc's mmap threshold: kept in the heap until trimmed
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_TRUE(MemoryTrimmer::trim());  // (a sanitizer's own allocator has nothing to trim)
#else
  (void)MemoryTrimmer::trim();
#endif
  const auto t0 = std::chrono::steady_clock::now();
  {
    const MemoryTrimmer trimmer(0.01);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  const MemoryTrimmer off(0);  // no thread
}

}  // namespace
}  // namespace cosy::server
