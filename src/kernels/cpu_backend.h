// The CPU backend: AVX2/FMA/F16C kernels on a thread pool. Streams run work in order on
// the calling thread (each call fans out over the pool), so events are reached as soon as
// they are recorded and a captured graph replays the recorded calls.
#pragma once

#include <memory>

#include "core/backend.h"
#include "core/thread_pool.h"
#include "kernels/block_cache.h"

namespace cosy::cpu {

// `threads` ≤ 0: the process-wide pool (ThreadPool::global()). Freed memory is kept for
// reuse up to `cache`'s limit (max_cached_bytes 0: none is kept).
std::unique_ptr<Backend> create_cpu_backend(int threads = 0, BlockCache::Options cache = {});

// True when this CPU has what the kernels were compiled for (AVX2, FMA, F16C).
bool cpu_supported();

}  // namespace cosy::cpu
