#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/arena.h"
#include "core/thread_pool.h"

namespace cosy {
namespace {

TEST(Arena, SteadyStateMakesNoHeapAllocation) {
  Arena arena;
  for (int step = 0; step < 5; ++step) {
    // A step with several allocations, larger than the first block.
    for (int i = 0; i < 6; ++i) {
      auto s = arena.alloc<float>(300000);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(s.data()) % 64, 0u);
      s[0] = 1.0f;
      s[s.size() - 1] = 2.0f;
    }
    arena.reset();
  }
  const int64_t after_warmup = arena.block_allocations();
  for (int step = 0; step < 20; ++step) {
    for (int i = 0; i < 6; ++i) arena.alloc<float>(300000);
    arena.reset();
  }
  EXPECT_EQ(arena.block_allocations(), after_warmup);
  EXPECT_GE(arena.high_water(), 6u * 300000 * sizeof(float));
}

TEST(Arena, RejectsBadAlignment) {
  Arena arena;
  EXPECT_THROW(arena.allocate(8, 3), std::exception);
}

TEST(ThreadPool, RunsEveryTaskOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, RangesCoverExactly) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(777);
  pool.parallel_range(777, 10, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, PropagatesTheFirstException) {
  ThreadPool pool(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.parallel_for(50,
                                 [&](int64_t i) {
                                   ran++;
                                   if (i == 7) throw std::runtime_error("task 7");
                                 }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 50);  // the others still ran
}

// Workers spin a while for new jobs, then sleep: jobs that come back to back (inside the
// spin) and jobs that come after the workers fell asleep both run every task, and the
// workers take part in both (a job whose tasks block until a second thread runs one
// cannot finish on the caller alone).
TEST(ThreadPool, WorkersTakeJobsWhileSpinningAndAfterSleeping) {
  ThreadPool pool(2);
  for (int round = 0; round < 40; ++round) {
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::atomic<int> arrived{0};
    std::atomic<int64_t> sum{0};
    pool.parallel_for(2, [&](int64_t i) {
      arrived++;
      while (arrived.load() < 2) std::this_thread::yield();  // needs both threads
      sum += i + 1;
    });
    EXPECT_EQ(sum.load(), 3) << "round " << round;
  }
}

TEST(ThreadPool, NestedAndConcurrentCallersFinish) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      pool.parallel_for(8, [&](int64_t) { pool.parallel_for(16, [&](int64_t j) { total += j; }); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 8 * (15 * 16 / 2));
}

}  // namespace
}  // namespace cosy
