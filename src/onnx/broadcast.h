// NumPy-style (multidirectional) broadcasting for the elementwise operators.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace cosy::onnx {

// The broadcast shape of `a` and `b`; fails when a dimension pair is neither equal nor 1.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Element strides of a contiguous tensor of shape `in` read as shape `out` (0 where broadcast).
Shape broadcast_strides(const Shape& in, const Shape& out);

// Calls fn(out_offset, {in_offsets...}, {inner_steps...}, n) for every run of the last
// output dimension: output elements out_offset .. +n read input k at
// in_offsets[k] + j * inner_steps[k]. Rows are spread over the pool when there are many.
template <size_t N, typename Fn>
void for_each_row(ThreadPool& pool, const Shape& out, const std::array<Shape, N>& strides,
                  Fn&& fn) {
  const int64_t rank = static_cast<int64_t>(out.size());
  const int64_t inner = rank == 0 ? 1 : out.back();
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  const int64_t rows = total / inner;
  auto run = [&](int64_t row_begin, int64_t row_end) {
    std::array<int64_t, N> steps{};
    for (size_t k = 0; k < N; ++k) steps[k] = rank == 0 ? 0 : strides[k].back();
    for (int64_t r = row_begin; r < row_end; ++r) {
      std::array<int64_t, N> offs{};
      int64_t rem = r;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t idx = rem % out[d];
        rem /= out[d];
        for (size_t k = 0; k < N; ++k) offs[k] += idx * strides[k][d];
      }
      fn(r * inner, offs, steps, inner);
    }
  };
  const int64_t grain = std::max<int64_t>(1, 32768 / inner);
  if (rows <= grain) {
    run(0, rows);
  } else {
    pool.parallel_range(rows, grain, run);
  }
}

}  // namespace cosy::onnx
