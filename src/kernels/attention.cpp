#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/scratch.h"
#include "kernels/vec_math.h"

namespace cosy::cpu {

KeyRange visible_keys(const AttentionArgs& a, int64_t pos, int64_t kv_len) {
  switch (a.mask) {
    case MaskKind::None:
      return {0, kv_len};
    case MaskKind::Causal:
      return {0, std::min(kv_len, pos + 1)};
    case MaskKind::ChunkCausal: {
      const int64_t chunk = pos / a.chunk;
      const int64_t begin =
          a.left_chunks < 0 ? 0 : std::max<int64_t>(0, (chunk - a.left_chunks) * a.chunk);
      return {begin, std::min(kv_len, (chunk + 1) * a.chunk)};
    }
  }
  return {0, kv_len};
}

namespace {

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  alignas(32) float t[8];
  _mm256_store_ps(t, acc);
  float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// r[u][v] → r[v][u] for an 8×8 block held in eight registers.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// One query against its visible keys [r.begin, r.end) with no relative term or bias: the
// paged (LM decode) and dense rows path. Keys go in blocks of 8 whose dot products reduce
// together through one transpose (each lane summed in dot()'s order, so the scores are the
// same as one dot per key); the softmax uses the vector exp, and P·V accumulates in
// registers. `scores` has room for the range rounded up to 8.
constexpr int64_t kMaxRegisterHead = 128;  // head_dim / 8 accumulators in registers

template <typename KeyRow, typename ValueRow>
void attend_query(const float* q, int64_t hd, KeyRange r, float scale, KeyRow key, ValueRow value,
                  float* scores, float* out) {
  const int64_t nd = hd / 8;
  __m256 qv[kMaxRegisterHead / 8];
  for (int64_t d = 0; d < nd; ++d) qv[d] = _mm256_loadu_ps(q + 8 * d);
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 vmax = neg_inf;
  for (int64_t j0 = r.begin; j0 < r.end; j0 += 8) {
    const int64_t nb = std::min<int64_t>(8, r.end - j0);
    __m256 acc[8];
    for (int64_t u = 0; u < 8; ++u) {
      acc[u] = _mm256_setzero_ps();
      if (u >= nb) continue;
      const float* k = key(j0 + u);
      for (int64_t d = 0; d < nd; ++d)
        acc[u] = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(k + 8 * d), acc[u]);
    }
    transpose8x8(acc);
    __m256 sc =
        _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])),
                      _mm256_add_ps(_mm256_add_ps(acc[4], acc[5]), _mm256_add_ps(acc[6], acc[7])));
    sc = _mm256_mul_ps(sc, _mm256_set1_ps(scale));
    const __m256 valid =
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nb)), lane));
    sc = _mm256_blendv_ps(neg_inf, sc, valid);
    _mm256_storeu_ps(scores + (j0 - r.begin), sc);
    vmax = _mm256_max_ps(vmax, sc);
  }
  alignas(32) float m8[8];
  _mm256_store_ps(m8, vmax);
  float mx = m8[0];
  for (int i = 1; i < 8; ++i) mx = std::max(mx, m8[i]);
  const int64_t n = r.end - r.begin;
  double sum = 0;
  for (int64_t j = 0; j < n; j += 8) {
    // Past the range the scores are -inf: exp gives 0 there.
    const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + j), _mm256_set1_ps(mx)));
    _mm256_storeu_ps(scores + j, p);
  }
  for (int64_t j = 0; j < n; ++j) sum += scores[j];
  const auto inv = static_cast<float>(1.0 / sum);
  __m256 o[kMaxRegisterHead / 8];
  for (int64_t d = 0; d < nd; ++d) o[d] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const __m256 w = _mm256_set1_ps(scores[j] * inv);
    const float* v = value(r.begin + j);
    for (int64_t d = 0; d < nd; ++d) o[d] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * d), o[d]);
  }
  for (int64_t d = 0; d < nd; ++d) _mm256_storeu_ps(out + 8 * d, o[d]);
}

// The tiled path for dense keys/values without a relative term or bias (the flow's
// attention, where sequences reach hundreds of frames): per block of queries, the visible
// keys of the head are packed once as Kᵀ in 16-key panels, S = Q·Kᵀ and O = P·V run on
// the GEMM micro-kernel (gemm_f32_panels; V is read in place), and the softmax uses the
// vector max and exp.
constexpr int64_t kTileQueries = 48;

struct DenseBlock {
  const float* q;  // first query row of the block, this head
  int64_t ld_q;
  const float* k;  // key row shared_len, this kv head
  const float* v;
  const float* k_shared;  // key row 0, this kv head (rows below shared_len)
  const float* v_shared;
  int64_t shared_len;
  // Half-precision keys/values instead (kv_half): the same rows, as uint16.
  bool half;
  const uint16_t* k16;
  const uint16_t* v16;
  const uint16_t* k16_shared;
  const uint16_t* v16_shared;
  int64_t ld_kv;
  float* out;  // first output row, this head
  int64_t ld_o;
  int64_t rows;            // queries in the block
  const KeyRange* ranges;  // per query
  int64_t head_dim;
  float scale;
};

// out = P·V for a block's probabilities P ([rows, nk16], keys [kb, ke)): half-precision
// values are widened into one block first; fp32 values are read in place as 16-column
// panels, the shared rows and the own rows as two products that are summed.
void multiply_by_values(const DenseBlock& b, const float* p, int64_t nk16, int64_t kb, int64_t ke,
                        ScratchScope& scratch) {
  const int64_t hd = b.head_dim, nk = ke - kb;
  if (b.half) {
    const std::span<float> vb = scratch.arena().alloc<float>(static_cast<size_t>(nk * hd));
    for (int64_t j = kb; j < ke; ++j) {
      const uint16_t* src =
          j < b.shared_len ? b.v16_shared + j * b.ld_kv : b.v16 + (j - b.shared_len) * b.ld_kv;
      float* dst = vb.data() + (j - kb) * hd;
      for (int64_t d = 0; d < hd; d += 8) {
        _mm256_storeu_ps(
            dst + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + d))));
      }
    }
    gemm_f32_panels(p, nk16, b.rows, nk, vb.data(), hd, kPanel, hd / kPanel, b.out, b.ld_o);
    return;
  }
  const int64_t split = std::clamp(b.shared_len, kb, ke);
  if (split == kb) {
    gemm_f32_panels(p, nk16, b.rows, nk, b.v + (kb - b.shared_len) * b.ld_kv, b.ld_kv, kPanel,
                    hd / kPanel, b.out, b.ld_o);
    return;
  }
  gemm_f32_panels(p, nk16, b.rows, split - kb, b.v_shared + kb * b.ld_kv, b.ld_kv, kPanel,
                  hd / kPanel, b.out, b.ld_o);
  if (split == ke) return;
  const std::span<float> own = scratch.arena().alloc<float>(static_cast<size_t>(b.rows * hd));
  gemm_f32_panels(p + (split - kb), nk16, b.rows, ke - split, b.v, b.ld_kv, kPanel, hd / kPanel,
                  own.data(), hd);
  for (int64_t i = 0; i < b.rows; ++i) {
    float* o = b.out + i * b.ld_o;
    const float* add = own.data() + i * hd;
    for (int64_t d = 0; d < hd; ++d) o[d] += add[d];
  }
}

void attend_dense_block(const DenseBlock& b, ScratchScope& scratch) {
  const int64_t hd = b.head_dim;
  int64_t kb = std::numeric_limits<int64_t>::max(), ke = 0;
  for (int64_t i = 0; i < b.rows; ++i) {
    if (b.ranges[i].end <= b.ranges[i].begin) continue;
    kb = std::min(kb, b.ranges[i].begin);
    ke = std::max(ke, b.ranges[i].end);
  }
  if (ke <= kb) {
    for (int64_t i = 0; i < b.rows; ++i)
      std::fill(b.out + i * b.ld_o, b.out + i * b.ld_o + hd, 0.0f);
    return;
  }
  const int64_t nk = ke - kb, nk16 = (nk + kPanel - 1) / kPanel * kPanel;
  // Kᵀ of the keys [kb, ke) in 16-key panels ([nk16 / 16][hd][16]), zero-padded.
  const std::span<float> kt = scratch.arena().alloc<float>(static_cast<size_t>(hd * nk16));
  for (int64_t j0 = 0; j0 < nk16; j0 += 8) {
    float* panel = kt.data() + (j0 / kPanel) * hd * kPanel + j0 % kPanel;
    for (int64_t d0 = 0; d0 < hd; d0 += 8) {
      __m256 r[8];
      for (int64_t u = 0; u < 8; ++u) {
        const int64_t j = kb + j0 + u;
        if (j0 + u >= nk) {
          r[u] = _mm256_setzero_ps();
        } else if (b.half) {
          const uint16_t* key =
              j < b.shared_len ? b.k16_shared + j * b.ld_kv : b.k16 + (j - b.shared_len) * b.ld_kv;
          r[u] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key + d0)));
        } else {
          const float* key =
              j < b.shared_len ? b.k_shared + j * b.ld_kv : b.k + (j - b.shared_len) * b.ld_kv;
          r[u] = _mm256_loadu_ps(key + d0);
        }
      }
      transpose8x8(r);
      for (int64_t u = 0; u < 8; ++u) _mm256_storeu_ps(panel + (d0 + u) * kPanel, r[u]);
    }
  }
  const std::span<float> sc = scratch.arena().alloc<float>(static_cast<size_t>(b.rows * nk16));
  gemm_f32_panels(b.q, b.ld_q, b.rows, hd, kt.data(), kPanel, hd * kPanel, nk16 / kPanel, sc.data(),
                  nk16);
  // Softmax numerators per row over its own visible keys (everything else gets 0); each
  // row's 1/sum scales its output row after P·V, hd values instead of nk.
  const std::span<float> inv_sum = scratch.arena().alloc<float>(static_cast<size_t>(b.rows));
  for (int64_t i = 0; i < b.rows; ++i) {
    float* srow = sc.data() + i * nk16;
    const int64_t lo = b.ranges[i].begin - kb, hi = b.ranges[i].end - kb;
    if (hi <= lo) {
      std::fill(srow, srow + nk16, 0.0f);
      inv_sum[static_cast<size_t>(i)] = 0.0f;
      continue;
    }
    // The row maximum (of the unscaled scores: the scale is positive).
    __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    int64_t m = lo;
    for (; m + 8 <= hi; m += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(srow + m));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vmax);
    float raw_max = *std::max_element(lanes, lanes + 8);
    for (; m < hi; ++m) raw_max = std::max(raw_max, srow[m]);
    const float mx = raw_max * b.scale;
    const __m256 vscale = _mm256_set1_ps(b.scale), vmx = _mm256_set1_ps(mx);
    std::fill(srow, srow + lo, 0.0f);
    std::fill(srow + hi, srow + nk16, 0.0f);
    // The sum in double lanes, as the per-key path sums in double.
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    int64_t j = lo;
    for (; j + 8 <= hi; j += 8) {
      const __m256 p = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(srow + j), vscale, vmx));
      _mm256_storeu_ps(srow + j, p);
      sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
      sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    }
    double sum = hsum256d(_mm256_add_pd(sum_lo, sum_hi));
    for (; j < hi; ++j) {
      srow[j] = std::exp(srow[j] * b.scale - mx);
      sum += srow[j];
    }
    inv_sum[static_cast<size_t>(i)] = static_cast<float>(1.0 / sum);
  }
  // O = P·V over the keys [kb, ke), then each row times its 1/sum.
  multiply_by_values(b, sc.data(), nk16, kb, ke, scratch);
  for (int64_t i = 0; i < b.rows; ++i) {
    const __m256 inv = _mm256_set1_ps(inv_sum[static_cast<size_t>(i)]);
    float* o = b.out + i * b.ld_o;
    for (int64_t d = 0; d < hd; d += 8)
      _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), inv));
  }
}

}  // namespace

void attention(ThreadPool& pool, std::span<const AttentionSeq> seqs, const AttentionArgs& a) {
  if (a.num_heads <= 0 || a.num_kv_heads <= 0 || a.head_dim <= 0 ||
      a.num_heads % a.num_kv_heads != 0) {
    fail("attention: ", a.num_heads, " heads do not group over ", a.num_kv_heads, " kv heads");
  }
  for (const AttentionSeq& sq : seqs) {
    const bool paged = sq.block_table != nullptr;
    if (paged && (a.block_size <= 0 || a.k_pool == nullptr || a.v_pool == nullptr))
      fail("attention: a paged sequence but no kv pool");
    if (sq.kv_half &&
        (paged || sq.q_rel != nullptr || sq.bias != nullptr || a.head_dim % kPanel != 0))
      fail(
          "attention: half-precision keys need dense keys, no relative term or bias and a "
          "head size that is a multiple of 16");
    const bool own_missing = sq.kv_half ? (sq.k16 == nullptr || sq.v16 == nullptr)
                                        : (sq.k == nullptr || sq.v == nullptr);
    const bool shared_missing = sq.kv_half ? (sq.k16_shared == nullptr || sq.v16_shared == nullptr)
                                           : (sq.k_shared == nullptr || sq.v_shared == nullptr);
    if (!paged && sq.q_len > 0 && sq.kv_len > sq.shared_len && own_missing)
      fail("attention: a sequence has neither a block table nor dense keys");
    if (sq.shared_len < 0 || sq.shared_len > sq.kv_len ||
        (sq.shared_len > 0 && (paged || shared_missing)))
      fail("attention: shared keys [0, ", sq.shared_len, ") do not fit a dense sequence of ",
           sq.kv_len);
    if ((sq.q_rel != nullptr) != (a.rel_table != nullptr) && sq.q_len > 0)
      fail("attention: relative positions need both q_rel and rel_table");
  }
  if (a.mask == MaskKind::ChunkCausal && a.chunk <= 0)
    fail("attention: chunk size must be positive");
  const int64_t hd = a.head_dim, group = a.num_heads / a.num_kv_heads;
  const int64_t ld_q = a.ld_q > 0 ? a.ld_q : a.num_heads * hd;
  const int64_t ld_o = a.ld_out > 0 ? a.ld_out : a.num_heads * hd;
  const float scale = a.scale > 0 ? a.scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t kv_row = a.num_kv_heads * hd;
  const int64_t ld_kv = a.ld_kv > 0 ? a.ld_kv : kv_row;
  const int64_t ld_rel = a.num_heads * hd;

  // Tasks: (sequence, head, block of queries).
  auto tiled = [&](const AttentionSeq& sq) {
    return sq.block_table == nullptr && sq.q_rel == nullptr && sq.bias == nullptr &&
           hd % kPanel == 0;
  };
  constexpr int64_t kQueries = 16;
  struct Task {
    size_t seq;
    int64_t head, q0, q1;
  };
  std::vector<Task> tasks;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].q_len > 0 && seqs[s].kv_len <= 0)
      fail("attention: a sequence has queries but no keys");
    for (int64_t h = 0; h < a.num_heads; ++h) {
      const int64_t block = tiled(seqs[s]) ? kTileQueries : kQueries;
      for (int64_t q = 0; q < seqs[s].q_len; q += block) {
        tasks.push_back({s, h, q, std::min(seqs[s].q_len, q + block)});
      }
    }
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t ti) {
    const Task& t = tasks[static_cast<size_t>(ti)];
    const AttentionSeq& sq = seqs[t.seq];
    const int64_t kvh = t.head / group;
    const float* dense_k = sq.k != nullptr ? sq.k + kvh * hd : nullptr;
    const float* dense_v = sq.v != nullptr ? sq.v + kvh * hd : nullptr;
    const float* shared_k = sq.k_shared != nullptr ? sq.k_shared + kvh * hd : nullptr;
    const float* shared_v = sq.v_shared != nullptr ? sq.v_shared + kvh * hd : nullptr;
    auto row = [&](bool key, int64_t j) {
      if (sq.block_table == nullptr) {
        if (j < sq.shared_len) return (key ? shared_k : shared_v) + j * ld_kv;
        return (key ? dense_k : dense_v) + (j - sq.shared_len) * ld_kv;
      }
      const float* pool_base = key ? a.k_pool : a.v_pool;
      const int64_t block = sq.block_table[j / a.block_size];
      return pool_base + (block * a.block_size + j % a.block_size) * kv_row + kvh * hd;
    };
    // Per-thread scratch, so a decode step makes no heap allocation per head.
    ScratchScope scratch;
    if (tiled(sq)) {
      KeyRange ranges[kTileQueries];
      for (int64_t i = t.q0; i < t.q1; ++i)
        ranges[i - t.q0] = visible_keys(a, sq.q_pos0 + i, sq.kv_len);
      DenseBlock b{sq.q + t.q0 * ld_q + t.head * hd,
                   ld_q,
                   dense_k,
                   dense_v,
                   shared_k,
                   shared_v,
                   sq.shared_len,
                   sq.kv_half,
                   sq.k16 != nullptr ? sq.k16 + kvh * hd : nullptr,
                   sq.v16 != nullptr ? sq.v16 + kvh * hd : nullptr,
                   sq.k16_shared != nullptr ? sq.k16_shared + kvh * hd : nullptr,
                   sq.v16_shared != nullptr ? sq.v16_shared + kvh * hd : nullptr,
                   ld_kv,
                   sq.out + t.q0 * ld_o + t.head * hd,
                   ld_o,
                   t.q1 - t.q0,
                   ranges,
                   hd,
                   scale};
      attend_dense_block(b, scratch);
      return;
    }
    const std::span<float> scores =
        scratch.arena().alloc<float>(static_cast<size_t>(sq.kv_len + 8));
    const std::span<float> acc = scratch.arena().alloc<float>(static_cast<size_t>(hd));
    const bool blocked =
        sq.q_rel == nullptr && sq.bias == nullptr && hd % 8 == 0 && hd <= kMaxRegisterHead;
    for (int64_t i = t.q0; i < t.q1; ++i) {
      const KeyRange r = visible_keys(a, sq.q_pos0 + i, sq.kv_len);
      float* out = sq.out + i * ld_o + t.head * hd;
      if (r.end <= r.begin) {
        std::fill(out, out + hd, 0.0f);
        continue;
      }
      const float* q = sq.q + i * ld_q + t.head * hd;
      if (blocked) {
        attend_query(
            q, hd, r, scale, [&](int64_t j) { return row(true, j); },
            [&](int64_t j) { return row(false, j); }, scores.data(), out);
        continue;
      }
      const float* bias =
          sq.bias != nullptr ? sq.bias + (t.head * sq.q_len + i) * sq.kv_len : nullptr;
      const float* q_rel = sq.q_rel != nullptr ? sq.q_rel + i * ld_q + t.head * hd : nullptr;
      const int64_t pos = sq.q_pos0 + i;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = r.begin; j < r.end; ++j) {
        float sc = dot(q, row(true, j), hd);
        if (q_rel != nullptr)
          sc += dot(q_rel, a.rel_table + (a.rel_zero + pos - j) * ld_rel + t.head * hd, hd);
        sc *= scale;
        if (bias != nullptr) sc += bias[j];
        scores[static_cast<size_t>(j)] = sc;
        mx = std::max(mx, sc);
      }
      double sum = 0;
      for (int64_t j = r.begin; j < r.end; ++j) {
        const float p = std::exp(scores[static_cast<size_t>(j)] - mx);
        scores[static_cast<size_t>(j)] = p;
        sum += p;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      const auto inv = static_cast<float>(1.0 / sum);
      for (int64_t j = r.begin; j < r.end; ++j) {
        axpy(scores[static_cast<size_t>(j)] * inv, row(false, j), acc.data(), hd);
      }
      std::copy(acc.begin(), acc.end(), out);
    }
  });
}

}  // namespace cosy::cpu
