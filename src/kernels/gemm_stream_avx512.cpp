// The few-rows GEMM (decode: each task streams its panels once) for fp16 and int8 weights
// on zmm (this file alone is built with -mavx512f; gemm() calls it only for a tuned or
// forced choice, and choices are refused on a CPU without it).
//
// The AVX2 kernel widens 8 weights per instruction pair (vpmovsxbd + vcvtdq2ps for int8,
// vcvtph2ps for fp16), and at one row those conversions, not memory, bound it: int8 decode
// streamed at 55–65 % of the DRAM read rate. Here one instruction pair widens 16. The
// arithmetic is the AVX2 kernel's lane for lane (gemm.cpp): the same k blocks, one row's
// four k chains summed as (0 + 1) + (2 + 3), several rows' sums in k order, then the column
// scale, the bias and C added in the same order. So the results are bit-identical.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge source, and
// -Wmaybe-uninitialized reports every inlined use (as in gemm_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_tiling.h"

namespace cosy::cpu {

namespace {

template <WeightFormat F>
inline __m512 load_row(const void* panel, int64_t k) {
  if constexpr (F == WeightFormat::F16) {
    const auto* p = static_cast<const uint16_t*>(panel) + k * kPanel;
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else {
    const auto* p = static_cast<const int8_t*>(panel) + k * kPanel;
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
}

template <WeightFormat F>
constexpr int64_t kRowBytes = F == WeightFormat::F16 ? 2 * kPanel : kPanel;

// Weight rows to bring in while this block computes, as the AVX2 kernel's Prefetch.
struct Ahead {
  const char* next = nullptr;
  int64_t rows = 0;
  const char* far = nullptr;
  int64_t far_rows = 0;
};

// One row: four k chains (the AVX2 kernel's a0/a1, a2/a3, a4/a5, a6/a7 pairs, here one
// zmm each).
template <WeightFormat F>
inline __m512 one_row(const float* row, const void* panel, int64_t k0, int64_t kc) {
  __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    c0 = _mm512_fmadd_ps(_mm512_set1_ps(row[k]), load_row<F>(panel, k0 + k), c0);
    c1 = _mm512_fmadd_ps(_mm512_set1_ps(row[k + 1]), load_row<F>(panel, k0 + k + 1), c1);
    c2 = _mm512_fmadd_ps(_mm512_set1_ps(row[k + 2]), load_row<F>(panel, k0 + k + 2), c2);
    c3 = _mm512_fmadd_ps(_mm512_set1_ps(row[k + 3]), load_row<F>(panel, k0 + k + 3), c3);
  }
  for (; k < kc; ++k) c0 = _mm512_fmadd_ps(_mm512_set1_ps(row[k]), load_row<F>(panel, k0 + k), c0);
  return _mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3));
}

template <int MR, WeightFormat F>
void run_tile(const GemmProblem& p, int64_t m, const PackedWeight& w, int64_t pnl, int64_t tap,
              int64_t c0, int64_t kc, bool first_block, const GemmEpilogue& epi, const Ahead& pf) {
  const float* rows[MR];
  for (int r = 0; r < MR; ++r) {
    rows[r] = p.a.base + (m + r) * p.a.row_stride + tap * p.a.tap_stride + c0;
  }
  const int64_t k0 = tap * p.a.tap_width + c0;
  const void* panel = w.panel(pnl);
  __m512 acc[MR];
  if constexpr (MR == 1) {
    acc[0] = one_row<F>(rows[0], panel, k0, kc);
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
    const int64_t pf_rows = std::min(pf.rows, kc);
    for (int64_t k = 0; k < kc; ++k) {
      if (k < pf_rows) _mm_prefetch(pf.next + k * kRowBytes<F>, _MM_HINT_T0);
      if (k < pf.far_rows) _mm_prefetch(pf.far + k * kRowBytes<F>, _MM_HINT_T1);
      const __m512 b = load_row<F>(panel, k0 + k);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(rows[r][k]), b, acc[r]);
    }
  }
  // The AVX2 tile's epilogue: × column scale (int8), + bias on the first block (else 0),
  // + C after the first block or when accumulating.
  const int64_t col0 = pnl * kPanel;
  const int64_t cols = std::min(kPanel, w.out_features() - col0);
  const auto mask =
      cols >= kPanel ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1);
  const bool load_c = !first_block || epi.accumulate;
  const __m512 scale =
      F == WeightFormat::I8 ? _mm512_loadu_ps(w.scales() + col0) : _mm512_set1_ps(1.0f);
  const __m512 bias = first_block && epi.bias != nullptr
                          ? _mm512_maskz_loadu_ps(mask, epi.bias + col0)
                          : _mm512_setzero_ps();
  for (int r = 0; r < MR; ++r) {
    float* out = p.c + (m + r) * p.ldc + col0;
    __m512 v = acc[r];
    if constexpr (F == WeightFormat::I8) v = _mm512_mul_ps(v, scale);
    v = _mm512_add_ps(v, bias);
    if (load_c) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
    _mm512_mask_storeu_ps(out, mask, v);
  }
}

// The AVX2 kernel's few-rows loop (gemm_block_typed): each panel finished before the next,
// the next block fetched into L1 and one further on into L2.
template <WeightFormat F>
void stream_block(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                  int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi) {
  constexpr int64_t kFarBlocks = 2;
  const int64_t k_total = p.a.taps * p.a.tap_width;
  const char* stream = static_cast<const char*>(w.panel(0));
  for (int64_t pnl = panel_begin; pnl < panel_end; ++pnl) {
    for (int64_t tap = 0; tap < p.a.taps; ++tap) {
      for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kGemmBlockK) {
        const int64_t kc = std::min(kGemmBlockK, p.a.tap_width - c0);
        const int64_t row_ahead = pnl * k_total + tap * p.a.tap_width + c0 + kGemmBlockK;
        const int64_t row_end = panel_end * k_total;
        Ahead pf;
        if (row_ahead < row_end) {
          pf.next = stream + row_ahead * kRowBytes<F>;
          pf.rows = std::min(kc, row_end - row_ahead);
          const int64_t far_ahead = row_ahead + kFarBlocks * kGemmBlockK;
          if (far_ahead < row_end) {
            pf.far = stream + far_ahead * kRowBytes<F>;
            pf.far_rows = std::min(kc, row_end - far_ahead);
          }
        }
        const bool first_block = tap == 0 && c0 == 0;
        for_each_tile(m_begin, m_end, [&](int64_t m, int64_t rows) {
          with_rows(rows, [&](auto mr) {
            run_tile<decltype(mr)::value, F>(p, m, w, pnl, tap, c0, kc, first_block, epi, pf);
          });
        });
      }
    }
  }
}

}  // namespace

void gemm_block_stream_avx512(const GemmProblem& p, int64_t m_begin, int64_t m_end,
                              const PackedWeight& w, int64_t panel_begin, int64_t panel_end,
                              const GemmEpilogue& epi) {
  switch (w.format()) {
    case WeightFormat::F16:
      return stream_block<WeightFormat::F16>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::I8:
      return stream_block<WeightFormat::I8>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    default:
      return gemm_block(p, m_begin, m_end, w, panel_begin, panel_end, epi);
  }
}

}  // namespace cosy::cpu
