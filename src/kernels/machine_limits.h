// This machine's limits, measured in the same run as the figures compared with them:
// peak FMA throughput and DRAM read bandwidth over all compute threads.
#pragma once

#include <chrono>
#include <functional>

#include "core/thread_pool.h"

namespace cosy::bench {

struct MachineLimits {
  double peak_gflops = 0;  // float32 FMA, 2 flops each, at the widest rate the CPU has
  double dram_read_gbps = 0;
  double peak_gflops_256 = 0;  // on ymm (AVX2) alone
  int fma_bits = 256;          // the vector width that gave peak_gflops
};
MachineLimits measure_machine(ThreadPool& pool);

// Seconds per call of fn, the best of repeated timings totalling about `budget_s`.
double time_best(const std::function<void()>& fn, double budget_s = 0.3);

}  // namespace cosy::bench
