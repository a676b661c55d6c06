// Row-wise kernels: RMSNorm, LayerNorm, softmax / log-softmax, rotary embedding.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace cosy::cpu {

void rms_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t dim,
              const float* weight, float eps);
void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t dim,
                const float* weight, const float* bias, float eps);
void softmax(ThreadPool& pool, float* x, int64_t rows, int64_t n, bool log);
// RoPE: angle_i = pos * theta^(-2i/d), computed in float32 as torch; the pairs rotated
// together are (i, i + d/2) (HF Qwen2's rotate-half) or (2i, 2i + 1) (x-transformers).
void rope(ThreadPool& pool, float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
          const int32_t* positions, float theta, RopePairs pairs = RopePairs::Halves);

}  // namespace cosy::cpu
