// Data movement and element-wise arithmetic over backend memory: what the model used to do
// in its own loops (residual sums, broadcast biases, concatenation, context rows, padding,
// upsampling, embedding lookups), as CPU kernels behind Primitives.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace cosy::cpu {

// y = alpha * x + beta * y; x is not read when alpha == 0.
void axpby(ThreadPool& pool, const float* x, float* y, int64_t n, float alpha, float beta);
// y[r, c] = x[r, c] + row[c].
void add_row(ThreadPool& pool, const float* x, const float* row, float* y, int64_t rows,
             int64_t cols);
// y[r, c] += gate[c] * x[r, c].
void gated_add(ThreadPool& pool, const float* x, const float* gate, float* y, int64_t rows,
               int64_t cols);
// dst[r, c] = src[r, c]; ld_src = 0 broadcasts src's one row.
void copy_2d(ThreadPool& pool, const float* src, int64_t ld_src, float* dst, int64_t ld_dst,
             int64_t rows, int64_t cols);
void fill_2d(ThreadPool& pool, float* dst, int64_t ld_dst, int64_t rows, int64_t cols, float value);
// y = x padded by rows (Primitives::pad_rows); fails on a reflect pad >= rows.
void pad_rows(ThreadPool& pool, const float* x, int64_t rows, int64_t cols, float* y, int64_t left,
              int64_t right, PadMode mode);
// dst row i = table row ids[i].
void gather_rows(ThreadPool& pool, const float* table, int64_t cols, const int32_t* ids, int64_t n,
                 float* dst);
// real/imag from log-magnitude and phase-logit rows (HiFT's head; Primitives::polar_spectrum).
void polar_spectrum(ThreadPool& pool, const float* x, int64_t ld_x, int64_t frames, int64_t bins,
                    float max_magnitude, float* real, float* imag);

}  // namespace cosy::cpu
