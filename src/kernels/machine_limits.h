// This machine's limits, measured in the same run as the figures compared with them:
// peak FMA throughput and DRAM read bandwidth over all compute threads.
#pragma once

#include <chrono>
#include <functional>

#include "core/thread_pool.h"

namespace cosy::bench {

struct MachineLimits {
  double peak_gflops = 0;  // float32 FMA, 2 flops each
  double dram_read_gbps = 0;
};
MachineLimits measure_machine(ThreadPool& pool);

// Seconds per call of fn, the best of repeated timings totalling about `budget_s`.
double time_best(const std::function<void()>& fn, double budget_s = 0.3);

}  // namespace cosy::bench
