// The float32 GEMM's AVX-512 tiles (this file alone is built with -mavx512f; gemm() calls
// it only when a tuned choice names one, and choices are refused on a CPU without it).
//
// Same packed weights as the AVX2 kernel (16-column panels), same k blocks of kBlockK
// and the same order of operations per output value: each block's sum starts from zero
// and runs k in order with one FMA per k, then bias and C are added as the AVX2 tile adds
// them. So every variant gives bit-identical results to the AVX2 kernel, and a tuned
// choice changes only the speed. On a core with two 512-bit FMA units a zmm FMA does
// twice a ymm FMA's work per cycle; on one that splits zmm into two halves (Zen 4) it
// gains only the tile's larger register file. Which wins is measured (`cosyserve tune`).
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_tiling.h"

namespace cosy::cpu {

namespace {

// MR rows × NP panels over kc values of k: A's row r at a + r * lda, panel j's row k at
// b + j * panel_stride + k * kPanel. The accumulators are a local array indexed only by
// constants after unrolling, so GCC keeps all MR × NP of them in zmm registers.
template <int MR, int NP>
inline void tile(const float* a, int64_t lda, const float* b, int64_t panel_stride, int64_t kc,
                 float* c, int64_t ldc, int64_t cols, const float* bias, bool load_c) {
  __m512 acc[MR][NP];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NP; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NP];
#pragma GCC unroll 8
    for (int j = 0; j < NP; ++j) bv[j] = _mm512_loadu_ps(b + j * panel_stride + k * kPanel);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  // As the AVX2 tile: acc + bias (zero without one), then + C.
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    const int64_t left = cols - j * kPanel;
    if (left <= 0) break;
    const auto mask =
        left >= kPanel ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 bias_v =
        bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + j * kPanel) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      float* out = c + r * ldc + j * kPanel;
      __m512 v = _mm512_add_ps(acc[r][j], bias_v);
      if (load_c) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, v);
    }
  }
}

// A tile of `rows` (1..MR) rows and `panels` (1..NP) panels, both known only at run time
// at the edges: the one place that turns them into template arguments.
template <int MR, int NP>
void edge_tile(int64_t rows, int64_t panels, const float* a, int64_t lda, const float* b,
               int64_t panel_stride, int64_t kc, float* c, int64_t ldc, int64_t cols,
               const float* bias, bool load_c) {
  if constexpr (MR > 1) {
    if (rows < MR) {
      return edge_tile<MR - 1, NP>(rows, panels, a, lda, b, panel_stride, kc, c, ldc, cols, bias,
                                   load_c);
    }
  }
  if constexpr (NP > 1) {
    if (panels < NP) {
      return edge_tile<MR, NP - 1>(rows, panels, a, lda, b, panel_stride, kc, c, ldc, cols, bias,
                                   load_c);
    }
  }
  tile<MR, NP>(a, lda, b, panel_stride, kc, c, ldc, cols, bias, load_c);
}

// Rows [m_begin, m_end) × panels [panel_begin, panel_end): for each k block (the AVX2
// kernel's blocks, so the sums round alike), each group of NP panels passes over every
// row tile while its kc × NP block stays in L1/L2.
template <int MR, int NP>
void block(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
           int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi) {
  const int64_t k_total = p.a.taps * p.a.tap_width;
  const auto* weights = static_cast<const float*>(w.panel(0));
  const int64_t panel_stride = k_total * kPanel;
  for (int64_t tap = 0; tap < p.a.taps; ++tap) {
    for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kGemmBlockK) {
      const int64_t kc = std::min(kGemmBlockK, p.a.tap_width - c0);
      const int64_t k_here = tap * p.a.tap_width + c0;
      const bool first_block = tap == 0 && c0 == 0;
      const bool load_c = !first_block || epi.accumulate;
      for (int64_t pnl = panel_begin; pnl < panel_end; pnl += NP) {
        const int64_t panels = std::min<int64_t>(NP, panel_end - pnl);
        const int64_t col0 = pnl * kPanel;
        const int64_t cols = std::min(panels * kPanel, w.out_features() - col0);
        const float* b = weights + pnl * panel_stride + k_here * kPanel;
        const float* bias = first_block && epi.bias != nullptr ? epi.bias + col0 : nullptr;
        for (int64_t m = m_begin; m < m_end; m += MR) {
          const int64_t rows = std::min<int64_t>(MR, m_end - m);
          const float* a = p.a.base + m * p.a.row_stride + tap * p.a.tap_stride + c0;
          float* c = p.c + m * p.ldc + col0;
          edge_tile<MR, NP>(rows, panels, a, p.a.row_stride, b, panel_stride, kc, c, p.ldc, cols,
                            bias, load_c);
        }
      }
    }
  }
}

}  // namespace

void gemm_block_f32_avx512(const GemmProblem& p, int64_t m_begin, int64_t m_end,
                           const PackedWeight& w, int64_t panel_begin, int64_t panel_end,
                           const GemmEpilogue& epi, GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::Avx512Rows6Panels4:
      return block<6, 4>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case GemmKernel::Avx512Rows8Panels3:
      return block<8, 3>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case GemmKernel::Avx512Rows12Panels2:
      return block<12, 2>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case GemmKernel::Avx2:
    case GemmKernel::Avx512Stream:
      break;
  }
  gemm_block(p, m_begin, m_end, w, panel_begin, panel_end, epi);
}

}  // namespace cosy::cpu
