// How the CPU GEMMs split their work, shared by the float32 GEMM (gemm.cpp) and the bf16
// and w8a8 ones (gemm_avx512.cpp): row tiles for a micro-kernel of up to kMaxRows rows, and
// pool tasks over row chunks × groups of column units. gemm_avx512.cpp is built for another
// instruction set, so this header holds no intrinsics and no inline non-template function (the
// linker could keep that TU's AVX-512 copy for everyone); plan_gemm_tasks lives in gemm.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "kernels/gemm.h"

namespace cosy::cpu {

// Micro-kernel height: 6 rows × 16 columns is 12 accumulators + 2 B + 1 A of AVX2's 16
// registers; the AVX-512 kernels' 6 × 32 is 12 of AVX-512's 32.
inline constexpr int64_t kMaxRows = 6;
inline constexpr int64_t kBlockM = 96;  // rows per task: their A block stays in L2

// Calls fn(std::integral_constant<int, MR>{}) for a row count of 1..kMaxRows known only at
// run time: the one place that turns it into a micro-kernel height.
template <typename Fn>
inline void with_rows(int64_t rows, Fn&& fn) {
  static_assert(kMaxRows == 6);
  switch (rows) {
    case 6:
      return fn(std::integral_constant<int, 6>{});
    case 5:
      return fn(std::integral_constant<int, 5>{});
    case 4:
      return fn(std::integral_constant<int, 4>{});
    case 3:
      return fn(std::integral_constant<int, 3>{});
    case 2:
      return fn(std::integral_constant<int, 2>{});
    case 1:
      return fn(std::integral_constant<int, 1>{});
    default:
      return;
  }
}

// Splits rows [begin, end) into micro-kernel tiles and calls fn(first row, rows) for each:
// full tiles, then the rest. A tail of 1–3 rows has too few accumulators to hide the FMA
// latency (2 rows: 4 chains, half the FMA rate), so it shares the last full tile's rows
// instead: 6 + 1..3 rows run as two tiles of 4 + 3, 4 + 4 or 5 + 4.
template <typename Fn>
inline void for_each_tile(int64_t begin, int64_t end, Fn&& fn) {
  int64_t full_end = end - (end - begin) % kMaxRows;
  const int64_t tail = end - full_end;
  if (tail > 0 && tail < 4 && full_end - begin >= kMaxRows) full_end -= kMaxRows;
  int64_t m = begin;
  for (; m < full_end; m += kMaxRows) fn(m, kMaxRows);
  int64_t rest = end - m;
  if (rest > kMaxRows) {
    const int64_t first = (rest + 1) / 2;
    fn(m, first);
    m += first;
    rest -= first;
  }
  if (rest > 0) fn(m, rest);
}

struct GemmTasks {
  struct RowChunk {
    size_t problem;
    int64_t begin, end;
  };
  std::vector<RowChunk> chunks;  // kBlockM rows of one problem each
  int64_t per_group = 0;         // column units per task
  int64_t groups = 0;            // task t: chunk t / groups, units from (t % groups) · per_group
  int64_t tasks() const { return static_cast<int64_t>(chunks.size()) * groups; }
};

// Every problem's rows in chunks (K checked against `k`), and `units` column units (panels,
// or the AVX-512 GEMMs' panel pairs) in groups, so chunks × groups makes about 8 tasks a thread.
GemmTasks plan_gemm_tasks(std::span<const GemmProblem> problems, int64_t k, int64_t units,
                          int threads);

}  // namespace cosy::cpu
