// The GEMM for WeightFormat::BF16 on AVX512_BF16 (this file alone is built with AVX-512
// flags; gemm() calls it only for bf16 weights, which PackedWeight refuses on a CPU
// without them). A's rows are rounded to bf16 (k, k+1) pairs once per call; vdpbf16ps
// then adds both products of a pair into a float32 lane, 32 products per instruction
// against the 16 of a float32 FMA, so the same cores do twice the work per cycle.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <vector>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/gemm_tiling.h"

namespace cosy::cpu {

namespace {

// Rows [m_begin, m_end) of problem p as bf16 pairs, k2 pairs a row (zero-padded).
void convert_rows(const GemmProblem& p, int64_t m_begin, int64_t m_end, int64_t k2, uint32_t* out) {
  const int64_t width = p.a.tap_width;
  for (int64_t m = m_begin; m < m_end; ++m) {
    auto* dst = reinterpret_cast<uint16_t*>(out + (m - m_begin) * k2);
    int64_t at = 0;  // bf16 values written
    for (int64_t tap = 0; tap < p.a.taps; ++tap) {
      const float* src = p.a.base + m * p.a.row_stride + tap * p.a.tap_stride;
      int64_t c = 0;
      for (; c + 32 <= width; c += 32, at += 32) {
        const __m512bh v =
            _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));
        _mm512_storeu_si512(dst + at, std::bit_cast<__m512i>(v));
      }
      if (c < width) {
        const auto left = static_cast<uint32_t>(width - c);
        const __mmask16 lo = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
        const __mmask16 hi = left <= 16 ? 0 : static_cast<__mmask16>((1u << (left - 16)) - 1);
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + c + 16),
                                               _mm512_maskz_loadu_ps(lo, src + c));
        _mm512_mask_storeu_epi16(dst + at, static_cast<__mmask32>((1ull << left) - 1),
                                 std::bit_cast<__m512i>(v));
        at += static_cast<int64_t>(left);
      }
    }
    for (; at < 2 * k2; ++at) dst[at] = 0;
  }
}

struct TileArgs {
  const uint32_t* a;  // first row's pairs
  int64_t k2;         // pairs per row (and per panel)
  const uint16_t* panel0;
  const uint16_t* panel1;  // null: one panel
  const char* prefetch;    // the next panels' bytes to bring into L1 on the way, or null
  int64_t prefetch_bytes;
  float* c;
  int64_t ldc;
  int64_t cols;  // valid columns from c (1..32)
  const float* bias;
  bool accumulate;
};

template <int MR, int NP>
void run_tile(const TileArgs& t) {
  __m512 acc[MR][NP];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NP; ++j) acc[r][j] = _mm512_setzero_ps();
  const int64_t pf_lines = t.prefetch != nullptr ? t.prefetch_bytes / 64 : 0;
  for (int64_t kp = 0; kp < t.k2; ++kp) {
    // The weights' next panels stream from memory behind this tile's work: two lines a
    // pair of k, the rate this tile consumes its own.
    if (kp * 2 < pf_lines) {
      _mm_prefetch(t.prefetch + kp * 128, _MM_HINT_T0);
      _mm_prefetch(t.prefetch + kp * 128 + 64, _MM_HINT_T0);
    }
    const auto b0 = std::bit_cast<__m512bh>(_mm512_loadu_si512(t.panel0 + kp * 32));
    __m512bh b1{};
    if constexpr (NP == 2) b1 = std::bit_cast<__m512bh>(_mm512_loadu_si512(t.panel1 + kp * 32));
    for (int r = 0; r < MR; ++r) {
      const auto a =
          std::bit_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(t.a[r * t.k2 + kp])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      if constexpr (NP == 2) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
    }
  }
  for (int j = 0; j < NP; ++j) {
    const int64_t col0 = kPanel * j;
    const int64_t cols = std::clamp<int64_t>(t.cols - col0, 0, kPanel);
    if (cols == 0) break;
    const auto mask = static_cast<__mmask16>((1u << cols) - 1);
    const __m512 bias =
        t.bias != nullptr ? _mm512_maskz_loadu_ps(mask, t.bias + col0) : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      float* c = t.c + r * t.ldc + col0;
      __m512 v = _mm512_add_ps(acc[r][j], bias);
      if (t.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, c));
      _mm512_mask_storeu_ps(c, mask, v);
    }
  }
}

// Rows [0, rows) of t in micro-kernel tiles, split as the float32 GEMM splits them; only
// the first tile prefetches the next panels.
template <int NP>
void run_rows(const TileArgs& t, int64_t rows) {
  for_each_tile(0, rows, [&](int64_t r0, int64_t n) {
    TileArgs u = t;
    u.a = t.a + r0 * t.k2;
    u.c = t.c + r0 * t.ldc;
    if (r0 > 0) u.prefetch = nullptr;
    with_rows(n, [&](auto mr) { run_tile<decltype(mr)::value, NP>(u); });
  });
}

}  // namespace

void pair_panel_bf16(const float* panel, int64_t rows, uint16_t* out) {
  // [r0 c0..c15 | r1 c0..c15] as bf16, then interleaved to (r0, r1) per column.
  static const __m512i kInterleave =
      _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t r = 0; r < rows; r += 2) {
    const __m512 lo = _mm512_loadu_ps(panel + r * kPanel);
    const __m512 hi =
        r + 1 < rows ? _mm512_loadu_ps(panel + (r + 1) * kPanel) : _mm512_setzero_ps();
    const __m512i both = std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_storeu_si512(out + r * kPanel, _mm512_permutexvar_epi16(kInterleave, both));
  }
}

void gemm_bf16_panels(const float* a, int64_t lda, int64_t m, int64_t k, const uint16_t* b,
                      int64_t panel_stride, int64_t panels, float* c, int64_t ldc) {
  const int64_t k2 = (k + 1) / 2;
  thread_local std::vector<uint32_t> a_pairs;  // runs inside one task: this thread's own
  if (a_pairs.size() < static_cast<size_t>(m * k2)) a_pairs.resize(static_cast<size_t>(m * k2));
  const GemmProblem rows{{a, lda, 1, 0, k}, m, nullptr, 0};
  convert_rows(rows, 0, m, k2, a_pairs.data());
  for (int64_t p = 0; p < panels; p += 2) {
    TileArgs t;
    t.a = a_pairs.data();
    t.k2 = k2;
    t.panel0 = b + p * panel_stride;
    t.panel1 = p + 1 < panels ? b + (p + 1) * panel_stride : nullptr;
    t.prefetch = nullptr;
    t.prefetch_bytes = 0;
    t.c = c + p * kPanel;
    t.ldc = ldc;
    t.cols = std::min<int64_t>(2, panels - p) * kPanel;
    t.bias = nullptr;
    t.accumulate = false;
    if (t.panel1 != nullptr) {
      run_rows<2>(t, m);
    } else {
      run_rows<1>(t, m);
    }
  }
}

void gemm_bf16(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
               const GemmEpilogue& epi) {
  if (w.format() != WeightFormat::BF16) fail("gemm_bf16: the weight is not bf16");
  const int64_t k = w.in_features(), k2 = (k + 1) / 2, n = w.out_features();
  const int64_t pairs = (w.panels() + 1) / 2;
  const GemmTasks plan = plan_gemm_tasks(problems, k, pairs, pool.num_threads());
  if (plan.chunks.empty()) return;
  // Chunk i's rows as pairs from a_offset[i].
  std::vector<size_t> a_offset(plan.chunks.size() + 1, 0);
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const auto& rc = plan.chunks[i];
    a_offset[i + 1] = a_offset[i] + static_cast<size_t>((rc.end - rc.begin) * k2);
  }
  // The caller's thread owns this buffer for the call; the pool's threads only read it.
  thread_local std::vector<uint32_t> a_pairs;
  if (a_pairs.size() < a_offset.back()) a_pairs.resize(a_offset.back());
  uint32_t* const a_data = a_pairs.data();  // not a_pairs in the tasks: that is per thread
  const auto n_chunks = static_cast<int64_t>(plan.chunks.size());
  pool.parallel_for(n_chunks, [&](int64_t i) {
    const auto& rc = plan.chunks[static_cast<size_t>(i)];
    convert_rows(problems[rc.problem], rc.begin, rc.end, k2,
                 a_data + a_offset[static_cast<size_t>(i)]);
  });

  // Tasks over row chunks × groups of panel pairs, planned as the float32 GEMM's.
  const size_t panel_bytes = static_cast<size_t>(k2) * 2 * kPanel * sizeof(uint16_t);
  pool.parallel_for(plan.tasks(), [&](int64_t task) {
    const auto chunk = static_cast<size_t>(task / plan.groups);
    const auto& rc = plan.chunks[chunk];
    const GemmProblem& p = problems[rc.problem];
    const int64_t g = task % plan.groups, per_group = plan.per_group;
    const int64_t pair_end = std::min(pairs, (g + 1) * per_group);
    for (int64_t pr = g * per_group; pr < pair_end; ++pr) {
      const int64_t p0 = 2 * pr;
      const bool two = p0 + 1 < w.panels();
      TileArgs t;
      t.a = a_data + a_offset[chunk];
      t.k2 = k2;
      t.panel0 = static_cast<const uint16_t*>(w.panel(p0));
      t.panel1 = two ? static_cast<const uint16_t*>(w.panel(p0 + 1)) : nullptr;
      // The task's next pair of panels (contiguous after this pair).
      t.prefetch = pr + 1 < pair_end ? static_cast<const char*>(w.panel(p0 + 2)) : nullptr;
      t.prefetch_bytes = static_cast<int64_t>(panel_bytes) * (p0 + 3 < w.panels() ? 2 : 1);
      t.c = p.c + rc.begin * p.ldc + p0 * kPanel;
      t.ldc = p.ldc;
      t.cols = std::min<int64_t>(2 * kPanel, n - p0 * kPanel);
      t.bias = epi.bias != nullptr ? epi.bias + p0 * kPanel : nullptr;
      t.accumulate = epi.accumulate;
      if (two) {
        run_rows<2>(t, rc.end - rc.begin);
      } else {
        run_rows<1>(t, rc.end - rc.begin);
      }
    }
  });
}

}  // namespace cosy::cpu
