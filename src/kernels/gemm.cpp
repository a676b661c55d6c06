#include "kernels/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_tiling.h"

namespace cosy::cpu {

namespace {

constexpr int64_t kBlockK = kGemmBlockK;
constexpr int64_t kStreamRows = kGemmStreamRows;  // up to this many rows, stream each panel once
constexpr int64_t kFarBlocks = 2;  // few rows: an L2 prefetch this many blocks past the L1 one

// Row k of a panel: 16 values at panel + k * ldb elements (ldb = kPanel when packed).
template <WeightFormat F>
inline void load_b(const void* panel, int64_t k, int64_t ldb, __m256& lo, __m256& hi) {
  if constexpr (F == WeightFormat::F32) {
    const float* p = static_cast<const float*>(panel) + k * ldb;
    lo = _mm256_loadu_ps(p);
    hi = _mm256_loadu_ps(p + 8);
  } else if constexpr (F == WeightFormat::F16) {
    const auto* p = static_cast<const uint16_t*>(panel) + k * ldb;
    lo = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
    hi = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p + 8)));
  } else {
    const auto* p = static_cast<const int8_t*>(panel) + k * ldb;
    lo = _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    hi = _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))));
  }
}

// Adds acc (scaled for int8, plus bias on the first k block) into C's MR×16 tile,
// writing only the `cols` valid columns.
template <int MR>
inline void store_tile(__m256 (&acc)[MR][2], float* c, int64_t ldc, int64_t cols,
                       const float* scale, const float* bias, bool load_c) {
  if (scale != nullptr) {
    const __m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + 8);
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm256_mul_ps(acc[r][0], s0);
      acc[r][1] = _mm256_mul_ps(acc[r][1], s1);
    }
  }
  if (cols == kPanel) {
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (bias != nullptr) {
      b0 = _mm256_loadu_ps(bias);
      b1 = _mm256_loadu_ps(bias + 8);
    }
    for (int r = 0; r < MR; ++r) {
      float* row = c + r * ldc;
      __m256 v0 = _mm256_add_ps(acc[r][0], b0), v1 = _mm256_add_ps(acc[r][1], b1);
      if (load_c) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    }
    return;
  }
  alignas(32) float tmp[kPanel];
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(tmp, acc[r][0]);
    _mm256_store_ps(tmp + 8, acc[r][1]);
    float* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      float v = tmp[j] + (bias != nullptr ? bias[j] : 0.0f);
      row[j] = load_c ? row[j] + v : v;
    }
  }
}

// MR rows × 16 columns over kc values of k. rows[r] points at A's first k of the block;
// B's rows are ldb elements apart.
// The accumulators are named locals, written out once: __m256 may alias float, so an
// accumulator array (even a local one GCC leaves in memory) is stored back at every k,
// which halved the kernel's speed.
// Weight rows the next block of a GEMM task will read, fetched into cache while this block
// computes (see gemm_block_typed).
struct Prefetch {
  const char* next = nullptr;  // the next block's first weight row
  int64_t rows = 0;            // its k rows
  int64_t row_bytes = 0;       // 16 weights in the panel's format
  const char* far = nullptr;   // a block further ahead, into L2
  int64_t far_rows = 0;
};

template <int MR, WeightFormat F>
inline void micro_kernel(const float* const* rows, const void* panel, int64_t ldb, int64_t k0,
                         int64_t kc, __m256 (&acc)[MR][2], const Prefetch& pf = {}) {
  static_assert(MR >= 1 && MR <= 6);
  const int64_t pf_rows = std::min(pf.rows, kc);
  const __m256 z = _mm256_setzero_ps();
  __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;
  __m256 c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
  const float* r0 = rows[0];
  const float* r1 = MR > 1 ? rows[1] : r0;
  const float* r2 = MR > 2 ? rows[2] : r0;
  const float* r3 = MR > 3 ? rows[3] : r0;
  const float* r4 = MR > 4 ? rows[4] : r0;
  const float* r5 = MR > 5 ? rows[5] : r0;
  for (int64_t k = 0; k < kc; ++k) {
    if (k < pf_rows) _mm_prefetch(pf.next + k * pf.row_bytes, _MM_HINT_T0);
    if (k < pf.far_rows) _mm_prefetch(pf.far + k * pf.row_bytes, _MM_HINT_T1);
    __m256 b0, b1;
    load_b<F>(panel, k0 + k, ldb, b0, b1);
    __m256 a = _mm256_broadcast_ss(r0 + k);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (MR > 1) {
      a = _mm256_broadcast_ss(r1 + k);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      c11 = _mm256_fmadd_ps(a, b1, c11);
    }
    if constexpr (MR > 2) {
      a = _mm256_broadcast_ss(r2 + k);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      c21 = _mm256_fmadd_ps(a, b1, c21);
    }
    if constexpr (MR > 3) {
      a = _mm256_broadcast_ss(r3 + k);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    if constexpr (MR > 4) {
      a = _mm256_broadcast_ss(r4 + k);
      c40 = _mm256_fmadd_ps(a, b0, c40);
      c41 = _mm256_fmadd_ps(a, b1, c41);
    }
    if constexpr (MR > 5) {
      a = _mm256_broadcast_ss(r5 + k);
      c50 = _mm256_fmadd_ps(a, b0, c50);
      c51 = _mm256_fmadd_ps(a, b1, c51);
    }
  }
  const __m256 out[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = out[r][0];
    acc[r][1] = out[r][1];
  }
}

// One row (decode): four independent k chains so the loop is bound by loads, not by FMA
// latency, and the weight stream runs at memory speed. Each k is loaded, widened and
// accumulated before the next: 8 accumulators + 2 weight vectors + 1 broadcast fit the 16
// registers. Loading all four k first (8 more live vectors) made GCC keep four
// accumulators on the stack for int8/fp16, whose widened weights cannot be folded into
// the FMA as fp32 loads are: a store-to-load round trip on every chain, and int8 decode
// ran at 75 % of DRAM speed.
template <WeightFormat F>
inline void accumulate_k(const float* row, const void* panel, int64_t k, __m256& lo, __m256& hi) {
  __m256 b0, b1;
  load_b<F>(panel, k, kPanel, b0, b1);
  const __m256 x = _mm256_broadcast_ss(row);
  lo = _mm256_fmadd_ps(x, b0, lo);
  hi = _mm256_fmadd_ps(x, b1, hi);
}

template <WeightFormat F>
inline void micro_kernel_1(const float* row, const void* panel, int64_t k0, int64_t kc,
                           __m256 (&acc)[1][2]) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    accumulate_k<F>(row + k, panel, k0 + k, a0, a1);
    accumulate_k<F>(row + k + 1, panel, k0 + k + 1, a2, a3);
    accumulate_k<F>(row + k + 2, panel, k0 + k + 2, a4, a5);
    accumulate_k<F>(row + k + 3, panel, k0 + k + 3, a6, a7);
  }
  for (; k < kc; ++k) accumulate_k<F>(row + k, panel, k0 + k, a0, a1);
  acc[0][0] = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a4, a6));
  acc[0][1] = _mm256_add_ps(_mm256_add_ps(a1, a3), _mm256_add_ps(a5, a7));
}

template <int MR, WeightFormat F>
void run_tile(const GemmProblem& p, int64_t m, const PackedWeight& w, int64_t pnl, int64_t tap,
              int64_t c0, int64_t kc, bool first_block, const GemmEpilogue& epi,
              const Prefetch& pf) {
  const float* rows[MR];
  for (int r = 0; r < MR; ++r) {
    rows[r] = p.a.base + (m + r) * p.a.row_stride + tap * p.a.tap_stride + c0;
  }
  __m256 acc[MR][2];
  const int64_t k0 = tap * p.a.tap_width + c0;
  if constexpr (MR == 1) {
    micro_kernel_1<F>(rows[0], w.panel(pnl), k0, kc, acc);
  } else {
    micro_kernel<MR, F>(rows, w.panel(pnl), kPanel, k0, kc, acc, pf);
  }
  const int64_t col0 = pnl * kPanel;
  const int64_t cols = std::min(kPanel, w.out_features() - col0);
  const float* scale = F == WeightFormat::I8 ? w.scales() + col0 : nullptr;
  const float* bias = first_block && epi.bias != nullptr ? epi.bias + col0 : nullptr;
  const bool load_c = !first_block || epi.accumulate;
  store_tile<MR>(acc, p.c + m * p.ldc + col0, p.ldc, cols, scale, bias, load_c);
}

template <WeightFormat F>
void run_rows(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
              int64_t pnl, int64_t tap, int64_t c0, int64_t kc, bool first_block,
              const GemmEpilogue& epi, const Prefetch& pf) {
  for_each_tile(m_begin, m_end, [&](int64_t m, int64_t rows) {
    with_rows(rows, [&](auto mr) {
      run_tile<decltype(mr)::value, F>(p, m, w, pnl, tap, c0, kc, first_block, epi, pf);
    });
  });
}

// Few-row GEMMs: every tile of a block prefetches the weight rows of the block after it.
// The first tile over a block otherwise waits on memory for each of its rows, and the
// hardware prefetcher alone did not keep ahead (M = 16 ran at ~53 % of peak; 60–72 % with
// this). All tiles issue the same prefetches, spreading the requests over the block.
// `rows` weight rows from `row` of the panels' one contiguous stream (panel p's row k is
// stream row p·K + k).
template <WeightFormat F>
Prefetch prefetch_of(const PackedWeight& w, int64_t row, int64_t rows) {
  constexpr int64_t row_bytes = kPanel * (F == WeightFormat::F32   ? 4
                                          : F == WeightFormat::F16 ? 2
                                                                   : 1);
  if (rows <= 0) return {};
  return {static_cast<const char*>(w.panel(0)) + row * row_bytes, rows, row_bytes};
}

template <WeightFormat F>
void gemm_block_typed(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                      int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi) {
  const int64_t k_total = p.a.taps * p.a.tap_width;
  if (m_end - m_begin <= kStreamRows) {
    // Few rows: the weights are the traffic. Finish each panel before the next, so they
    // stream from memory in one sequential pass; the rows stay in L1/L2.
    for (int64_t pnl = panel_begin; pnl < panel_end; ++pnl) {
      for (int64_t tap = 0; tap < p.a.taps; ++tap) {
        for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kBlockK) {
          const int64_t kc = std::min(kBlockK, p.a.tap_width - c0);
          // The task's panels are one contiguous stream of weight rows: fetch one block
          // ahead into L1 (two or four blocks ahead measured slower), and the block
          // kFarBlocks after that one into L2, so more lines are in flight from DRAM:
          // batch-16 fp32 decode 168–178 → 191–201 tokens/s (3 after it: 184–193).
          const int64_t k_here = tap * p.a.tap_width + c0;
          const int64_t row_ahead = pnl * k_total + k_here + kBlockK;
          const int64_t row_end = panel_end * k_total;
          Prefetch pf = prefetch_of<F>(w, row_ahead, std::min(kc, row_end - row_ahead));
          const int64_t far_ahead = row_ahead + kFarBlocks * kBlockK;
          if (pf.rows > 0 && far_ahead < row_end) {
            pf.far = static_cast<const char*>(w.panel(0)) + far_ahead * pf.row_bytes;
            pf.far_rows = std::min(kc, row_end - far_ahead);
          }
          run_rows<F>(p, m_begin, m_end, w, pnl, tap, c0, kc, tap == 0 && c0 == 0, epi, pf);
        }
      }
    }
    return;
  }
  // Many rows: each k block of A stays in L1 while every panel passes over it. The first
  // row tile over a weight block fetches the next panel's block (same k range) into L1:
  // the LM's and the flow's weights come from DRAM, and without it that tile waited on
  // them (LM shapes at M = 64 and 119: +3–7 %, the flow's 160-row linears up to +13 %, the
  // convolutions, whose weights stay in cache, unchanged). One tile, not every tile:
  // prefetching from all 16 measured a few percent slower on the convolutions.
  for (int64_t tap = 0; tap < p.a.taps; ++tap) {
    for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kBlockK) {
      const int64_t kc = std::min(kBlockK, p.a.tap_width - c0);
      const int64_t k_here = tap * p.a.tap_width + c0;
      for (int64_t pnl = panel_begin; pnl < panel_end; ++pnl) {
        const bool first_block = tap == 0 && c0 == 0;
        const Prefetch pf =
            pnl + 1 < panel_end ? prefetch_of<F>(w, (pnl + 1) * k_total + k_here, kc) : Prefetch{};
        run_rows<F>(p, m_begin, m_begin + kMaxRows, w, pnl, tap, c0, kc, first_block, epi, pf);
        run_rows<F>(p, m_begin + kMaxRows, m_end, w, pnl, tap, c0, kc, first_block, epi, {});
      }
    }
  }
}

template <int MR>
void panel_tile(const float* a, int64_t lda, int64_t k, const float* panel, int64_t ldb, float* c,
                int64_t ldc, bool accumulate) {
  const float* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = a + r * lda;
  __m256 acc[MR][2];
  micro_kernel<MR, WeightFormat::F32>(rows, panel, ldb, 0, k, acc);
  store_tile<MR>(acc, c, ldc, kPanel, nullptr, nullptr, accumulate);
}

}  // namespace

void gemm_f32_panels(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb,
                     int64_t panel_stride, int64_t panels, float* c, int64_t ldc, bool accumulate) {
  for (int64_t p = 0; p < panels; ++p) {
    const float* panel = b + p * panel_stride;
    for_each_tile(0, m, [&](int64_t m0, int64_t rows) {
      const float* ar = a + m0 * lda;
      float* cr = c + m0 * ldc + p * kPanel;
      with_rows(rows, [&](auto mr) {
        panel_tile<decltype(mr)::value>(ar, lda, k, panel, ldb, cr, ldc, accumulate);
      });
    });
  }
}

void gemm_block(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi) {
  switch (w.format()) {
    case WeightFormat::F32:
      return gemm_block_typed<WeightFormat::F32>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::F16:
      return gemm_block_typed<WeightFormat::F16>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::I8:
      return gemm_block_typed<WeightFormat::I8>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::BF16:
    case WeightFormat::W8A8:
      fail("gemm_block: ", weight_format_name(w.format()), " weights run through gemm()");
  }
}

GemmTasks plan_gemm_tasks(std::span<const GemmProblem> problems, int64_t k, int64_t units,
                          int threads) {
  GemmTasks plan;
  for (size_t i = 0; i < problems.size(); ++i) {
    const GemmProblem& p = problems[i];
    if (p.a.taps * p.a.tap_width != k) {
      fail("gemm: K mismatch: activations have ", p.a.taps * p.a.tap_width,
           " columns, the weight expects ", k);
    }
    for (int64_t m = 0; m < p.m; m += kBlockM) {
      plan.chunks.push_back({i, m, std::min(p.m, m + kBlockM)});
    }
  }
  if (plan.chunks.empty()) return plan;
  const auto n_chunks = static_cast<int64_t>(plan.chunks.size());
  const int64_t target = static_cast<int64_t>(threads) * 8;
  const int64_t groups = std::clamp<int64_t>((target + n_chunks - 1) / n_chunks, 1, units);
  plan.per_group = (units + groups - 1) / groups;
  plan.groups = (units + plan.per_group - 1) / plan.per_group;
  return plan;
}

void record_gemm_shape(const GemmShape& shape, const GemmProblem& p);  // gemm_kernel.cpp

void gemm_with_kernels(ThreadPool& pool, std::span<const GemmProblem> problems,
                       const PackedWeight& w, const GemmEpilogue& epi, GemmKernel many,
                       GemmKernel few) {
  if (!gemm_kernel_runs(many, w.format(), GemmRows::Many) ||
      !gemm_kernel_runs(few, w.format(), GemmRows::Few)) {
    fail("gemm: kernels ", gemm_kernel_name(many), " / ", gemm_kernel_name(few), " do not run ",
         weight_format_name(w.format()), " weights");
  }
  if (w.format() == WeightFormat::BF16) return gemm_bf16(pool, problems, w, epi);
  if (w.format() == WeightFormat::W8A8) return gemm_w8a8(pool, problems, w, epi);
  const int64_t panels = w.panels();
  const GemmTasks plan = plan_gemm_tasks(problems, w.in_features(), panels, pool.num_threads());
  pool.parallel_for(plan.tasks(), [&](int64_t task) {
    const auto& rc = plan.chunks[static_cast<size_t>(task / plan.groups)];
    const int64_t g = task % plan.groups;
    const int64_t panel_end = std::min(panels, (g + 1) * plan.per_group);
    const GemmProblem& p = problems[rc.problem];
    if (rc.end - rc.begin <= kStreamRows) {
      if (few == GemmKernel::Avx512Stream) {
        gemm_block_stream_avx512(p, rc.begin, rc.end, w, g * plan.per_group, panel_end, epi);
      } else {
        gemm_block(p, rc.begin, rc.end, w, g * plan.per_group, panel_end, epi);
      }
    } else if (many != GemmKernel::Avx2) {
      gemm_block_f32_avx512(p, rc.begin, rc.end, w, g * plan.per_group, panel_end, epi, many);
    } else {
      gemm_block(p, rc.begin, rc.end, w, g * plan.per_group, panel_end, epi);
    }
  });
}

void gemm_with_kernel(ThreadPool& pool, std::span<const GemmProblem> problems,
                      const PackedWeight& w, const GemmEpilogue& epi, GemmKernel kernel) {
  const bool many = gemm_kernel_runs(kernel, w.format(), GemmRows::Many);
  const bool few = gemm_kernel_runs(kernel, w.format(), GemmRows::Few);
  if (!many && !few) {
    fail("gemm: kernel ", gemm_kernel_name(kernel), " does not run ",
         weight_format_name(w.format()), " weights");
  }
  gemm_with_kernels(pool, problems, w, epi, many ? kernel : GemmKernel::Avx2,
                    few ? kernel : GemmKernel::Avx2);
}

void gemm(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
          const GemmEpilogue& epi) {
  if (w.format() == WeightFormat::BF16) return gemm_bf16(pool, problems, w, epi);
  if (w.format() == WeightFormat::W8A8) return gemm_w8a8(pool, problems, w, epi);
  GemmKernel many = GemmKernel::Avx2, few = GemmKernel::Avx2;
  if (!problems.empty()) {
    const GemmShape shape{w.out_features(), problems[0].a.taps, problems[0].a.tap_width, w.format(),
                          GemmRows::Many};
    GemmShape few_shape = shape;
    few_shape.regime = GemmRows::Few;
    for (const GemmProblem& p : problems) {
      record_gemm_shape(p.m <= kStreamRows ? few_shape : shape, p);
    }
    many = gemm_kernel_for(shape);
    few = gemm_kernel_for(few_shape);
  }
  gemm_with_kernels(pool, problems, w, epi, many, few);
}

}  // namespace cosy::cpu
