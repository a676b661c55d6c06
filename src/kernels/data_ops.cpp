#include "kernels/data_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace cosy::cpu {

namespace {

// Rows per task so that a task moves at least ~64 KB: small copies stay on the caller.
int64_t rows_per_task(int64_t cols) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
}

}  // namespace

void axpby(ThreadPool& pool, const float* x, float* y, int64_t n, float alpha, float beta) {
  pool.parallel_range(n, 16384, [&](int64_t b, int64_t e) {
    if (alpha == 0.0f) {
      for (int64_t i = b; i < e; ++i) y[i] = beta * y[i];
    } else if (alpha == 1.0f && beta == 1.0f) {
      for (int64_t i = b; i < e; ++i) y[i] = y[i] + x[i];  // the residual sum, exactly
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = alpha * x[i] + beta * y[i];
    }
  });
}

void add_row(ThreadPool& pool, const float* x, const float* row, float* y, int64_t rows,
             int64_t cols) {
  pool.parallel_range(rows, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* src = x + r * cols;
      float* dst = y + r * cols;
      for (int64_t c = 0; c < cols; ++c) dst[c] = src[c] + row[c];
    }
  });
}

void gated_add(ThreadPool& pool, const float* x, const float* gate, float* y, int64_t rows,
               int64_t cols) {
  pool.parallel_range(rows, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* src = x + r * cols;
      float* dst = y + r * cols;
      for (int64_t c = 0; c < cols; ++c) dst[c] += gate[c] * src[c];
    }
  });
}

void copy_2d(ThreadPool& pool, const float* src, int64_t ld_src, float* dst, int64_t ld_dst,
             int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  const auto bytes = static_cast<size_t>(cols) * sizeof(float);
  if (ld_src == cols && ld_dst == cols) {
    pool.parallel_range(rows, rows_per_task(cols), [&](int64_t b, int64_t e) {
      std::memcpy(dst + b * cols, src + b * cols, static_cast<size_t>(e - b) * bytes);
    });
    return;
  }
  pool.parallel_range(rows, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::memcpy(dst + r * ld_dst, src + r * ld_src, bytes);
  });
}

void fill_2d(ThreadPool& pool, float* dst, int64_t ld_dst, int64_t rows, int64_t cols,
             float value) {
  if (rows <= 0 || cols <= 0) return;
  pool.parallel_range(rows, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::fill_n(dst + r * ld_dst, cols, value);
  });
}

void pad_rows(ThreadPool& pool, const float* x, int64_t rows, int64_t cols, float* y, int64_t left,
              int64_t right, PadMode mode) {
  if (rows <= 0 || left < 0 || right < 0)
    fail("pad_rows: ", rows, " rows padded by ", left, ", ", right);
  if (mode == PadMode::Reflect && (left >= rows || right >= rows))
    fail("pad_rows: a reflect pad of ", std::max(left, right), " needs more than ", rows, " rows");
  // Output row o reads input row src(o), or is zero (-1).
  const auto src = [&](int64_t o) -> int64_t {
    const int64_t i = o - left;
    if (i >= 0 && i < rows) return i;
    switch (mode) {
      case PadMode::Zero:
        return -1;
      case PadMode::Reflect:
        return i < 0 ? -i : 2 * (rows - 1) - i;
      case PadMode::Replicate:
        return i < 0 ? 0 : rows - 1;
    }
    return -1;
  };
  const auto bytes = static_cast<size_t>(cols) * sizeof(float);
  pool.parallel_range(left + rows + right, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const int64_t i = src(o);
      if (i < 0) {
        std::fill_n(y + o * cols, cols, 0.0f);
      } else {
        std::memcpy(y + o * cols, x + i * cols, bytes);
      }
    }
  });
}

void gather_rows(ThreadPool& pool, const float* table, int64_t cols, const int32_t* ids, int64_t n,
                 float* dst) {
  const auto bytes = static_cast<size_t>(cols) * sizeof(float);
  pool.parallel_range(n, rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      std::memcpy(dst + i * cols, table + static_cast<int64_t>(ids[i]) * cols, bytes);
  });
}

void polar_spectrum(ThreadPool& pool, const float* x, int64_t ld_x, int64_t frames, int64_t bins,
                    float max_magnitude, float* real, float* imag) {
  pool.parallel_range(frames, 64, [&](int64_t b, int64_t e) {
    for (int64_t f = b; f < e; ++f) {
      const float* row = x + f * ld_x;
      for (int64_t k = 0; k < bins; ++k) {
        const float mag = std::min(std::exp(row[k]), max_magnitude);
        const float phase = std::sin(row[bins + k]);
        real[f * bins + k] = mag * std::cos(phase);
        imag[f * bins + k] = mag * std::sin(phase);
      }
    }
  });
}

}  // namespace cosy::cpu
