// The few-rows GEMM (decode: each task streams its panels once) for float32, fp16 and int8
// weights on zmm (this file alone is built with -mavx512f; gemm() calls it only for a tuned
// or forced choice, and choices are refused on a CPU without it).
//
// Two things bound the AVX2 kernel there. It widens 8 weights per instruction pair
// (vpmovsxbd + vcvtdq2ps for int8, vcvtph2ps for fp16), and at one row those conversions
// kept int8 decode at about half the read rate; here one pair widens 16. And each task read
// one sequential stream, which on some memory systems keeps too few misses in flight (a
// single stream per thread read ~70 % of what four did on the Intel host); here four panels
// are read at once. The arithmetic per output value is the AVX2 kernel's (gemm.cpp): the
// same k blocks, one row's four k chains summed as (0 + 1) + (2 + 3), several rows' sums in
// k order, then the column scale, the bias and C added in the same order. So the results
// are bit-identical.
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
  if constexpr (F == WeightFormat::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(panel) + k * kPanel);
  } else if constexpr (F == WeightFormat::F16) {
    const auto* p = static_cast<const uint16_t*>(panel) + k * kPanel;
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else {
    const auto* p = static_cast<const int8_t*>(panel) + k * kPanel;
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
}

// One row against NP panels at once: per panel the AVX2 kernel's four k chains (its
// a0/a1 .. a6/a7 pairs, one zmm each here), summed (0 + 1) + (2 + 3). Reading NP panels
// together keeps NP sequential streams in flight, where one stream alone left the memory
// system idle part of the time (int8 decode at ~62 % of the four-stream read rate).
template <WeightFormat F, int NP>
inline void one_row(const float* row, const void* const* panels, int64_t k0, int64_t kc,
                    __m512 (&out)[NP]) {
  __m512 c[NP][4];
#pragma GCC unroll 4
  for (int j = 0; j < NP; ++j) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) c[j][q] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m512 a = _mm512_set1_ps(row[k + q]);
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) {
        c[j][q] = _mm512_fmadd_ps(a, load_row<F>(panels[j], k0 + k + q), c[j][q]);
      }
    }
  }
  for (; k < kc; ++k) {
    const __m512 a = _mm512_set1_ps(row[k]);
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j)
      c[j][0] = _mm512_fmadd_ps(a, load_row<F>(panels[j], k0 + k), c[j][0]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < NP; ++j) {
    out[j] = _mm512_add_ps(_mm512_add_ps(c[j][0], c[j][1]), _mm512_add_ps(c[j][2], c[j][3]));
  }
}

// The AVX2 tile's epilogue for `rows` rows from m of panel pnl: × column scale (int8),
// + bias on the first block (else 0), + C after the first block or when accumulating.
template <WeightFormat F>
void finish(const __m512* acc, int rows, const GemmProblem& p, int64_t m, const PackedWeight& w,
            int64_t pnl, bool first_block, const GemmEpilogue& epi) {
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
  for (int r = 0; r < rows; ++r) {
    float* out = p.c + (m + r) * p.ldc + col0;
    __m512 v = acc[r];
    if constexpr (F == WeightFormat::I8) v = _mm512_mul_ps(v, scale);
    v = _mm512_add_ps(v, bias);
    if (load_c) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
    _mm512_mask_storeu_ps(out, mask, v);
  }
}

// Row m alone against panels [pnl, pnl + NP), block by block.
template <WeightFormat F, int NP>
void one_row_panels(const GemmProblem& p, int64_t m, const PackedWeight& w, int64_t pnl,
                    const GemmEpilogue& epi) {
  const void* panels[NP];
  for (int j = 0; j < NP; ++j) panels[j] = w.panel(pnl + j);
  for (int64_t tap = 0; tap < p.a.taps; ++tap) {
    for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kGemmBlockK) {
      const int64_t kc = std::min(kGemmBlockK, p.a.tap_width - c0);
      const float* row = p.a.base + m * p.a.row_stride + tap * p.a.tap_stride + c0;
      __m512 acc[NP];
      one_row<F, NP>(row, panels, tap * p.a.tap_width + c0, kc, acc);
      for (int j = 0; j < NP; ++j)
        finish<F>(&acc[j], 1, p, m, w, pnl + j, tap == 0 && c0 == 0, epi);
    }
  }
}

// MR rows (2..6) against NP panels at once, k in order per (row, panel), as the AVX2 tile
// sums each row against its one panel. NP streams in flight, as for one row.
template <int MR, int NP, WeightFormat F>
void run_tile(const GemmProblem& p, int64_t m, const PackedWeight& w, int64_t pnl, int64_t tap,
              int64_t c0, int64_t kc, bool first_block, const GemmEpilogue& epi) {
  const float* rows[MR];
  for (int r = 0; r < MR; ++r) {
    rows[r] = p.a.base + (m + r) * p.a.row_stride + tap * p.a.tap_stride + c0;
  }
  const int64_t k0 = tap * p.a.tap_width + c0;
  const void* panels[NP];
  for (int j = 0; j < NP; ++j) panels[j] = w.panel(pnl + j);
  __m512 acc[NP][MR];
#pragma GCC unroll 4
  for (int j = 0; j < NP; ++j) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[j][r] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) {
      const __m512 b = load_row<F>(panels[j], k0 + k);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        acc[j][r] = _mm512_fmadd_ps(_mm512_set1_ps(rows[r][k]), b, acc[j][r]);
      }
    }
  }
  for (int j = 0; j < NP; ++j) finish<F>(acc[j], MR, p, m, w, pnl + j, first_block, epi);
}

// Rows [m_begin, m_end) against panels [pnl, pnl + NP), block by block, in the AVX2
// kernel's row tiles.
template <int NP, WeightFormat F>
void rows_panels(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                 int64_t pnl, const GemmEpilogue& epi) {
  for (int64_t tap = 0; tap < p.a.taps; ++tap) {
    for (int64_t c0 = 0; c0 < p.a.tap_width; c0 += kGemmBlockK) {
      const int64_t kc = std::min(kGemmBlockK, p.a.tap_width - c0);
      const bool first_block = tap == 0 && c0 == 0;
      for_each_tile(m_begin, m_end, [&](int64_t m, int64_t rows) {
        with_rows(rows, [&](auto mr) {
          run_tile<decltype(mr)::value, NP, F>(p, m, w, pnl, tap, c0, kc, first_block, epi);
        });
      });
    }
  }
}

// The few-rows loop: one row's four k chains or a tile's rows, four panels at a time.
template <WeightFormat F>
void stream_block(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                  int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi) {
  constexpr int kPanels = 4;
  int64_t pnl = panel_begin;
  if (m_end - m_begin == 1) {
    for (; pnl + kPanels <= panel_end; pnl += kPanels) {
      one_row_panels<F, kPanels>(p, m_begin, w, pnl, epi);
    }
    for (; pnl < panel_end; ++pnl) one_row_panels<F, 1>(p, m_begin, w, pnl, epi);
    return;
  }
  for (; pnl + kPanels <= panel_end; pnl += kPanels) {
    rows_panels<kPanels, F>(p, m_begin, m_end, w, pnl, epi);
  }
  for (; pnl < panel_end; ++pnl) rows_panels<1, F>(p, m_begin, m_end, w, pnl, epi);
}

}  // namespace

void gemm_block_stream_avx512(const GemmProblem& p, int64_t m_begin, int64_t m_end,
                              const PackedWeight& w, int64_t panel_begin, int64_t panel_end,
                              const GemmEpilogue& epi) {
  switch (w.format()) {
    case WeightFormat::F32:
      return stream_block<WeightFormat::F32>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::F16:
      return stream_block<WeightFormat::F16>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    case WeightFormat::I8:
      return stream_block<WeightFormat::I8>(p, m_begin, m_end, w, panel_begin, panel_end, epi);
    default:
      return gemm_block(p, m_begin, m_end, w, panel_begin, panel_end, epi);
  }
}

}  // namespace cosy::cpu
