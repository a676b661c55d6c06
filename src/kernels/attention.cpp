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

// The tiled path for every sequence without a relative term or bias (the flow's
// attention, where sequences reach hundreds of frames, and the LM's paged cache). A task
// is one (sequence, kv head) and a range of queries: it packs the keys its queries see
// once, Kᵀ in 16-key panels and V in 16-dim panels, and runs the query heads that share
// the kv head as one block of rows, so S = Q·Kᵀ and O = P·V run on the GEMM micro-kernel
// (gemm_f32_panels) with the vector max and exp between. A decode step's 7 Qwen2 heads
// per kv head read each key once instead of 7 times. Packing per 48-query block instead
// cost a streaming chunk's 2-row tail block as much as its 48-row one, and P·V read V in
// place at the KV row stride (a page every two rows). A decode task (one query, 7 rows)
// reads each value row once either way, so its P·V reads V in place from each 16-row
// page, with no copy: `kernel_bench --only attention`, LM decode, 73–76 → 96 GFLOP/s.
constexpr int64_t kTileQueries = 48;   // rows (query × head) of one S = Q·Kᵀ block
constexpr int64_t kTaskQueries = 192;  // rows of one task

// Where the keys and values of one sequence and kv head live.
struct KeySource {
  // Paged: row j at pool + (table[j / block] · block + j % block) · kv_row + head offset.
  const int32_t* block_table;
  const float* k_pool;
  const float* v_pool;
  int64_t block_size, kv_row;
  // Dense: rows [0, shared_len) at k_shared/v_shared, the rest at k/v, ld_kv apart; or the
  // same as half floats (half).
  const float* k;
  const float* v;
  const float* k_shared;
  const float* v_shared;
  int64_t shared_len;
  bool half;
  const uint16_t* k16;
  const uint16_t* v16;
  const uint16_t* k16_shared;
  const uint16_t* v16_shared;
  int64_t ld_kv;
  int64_t head_offset;  // kv head × head_dim
  int64_t head_dim;

  // Key (or value) row j of an fp32 source, this head's head_dim values.
  const float* row(bool key, int64_t j) const {
    if (block_table != nullptr) {
      const int64_t r = block_table[j / block_size] * block_size + j % block_size;
      return (key ? k_pool : v_pool) + r * kv_row + head_offset;
    }
    const bool shared = j < shared_len;
    const float* base = key ? (shared ? k_shared : k) : (shared ? v_shared : v);
    return base + dense_offset(j);
  }

  // Row j's first element in its dense buffer (the shared prefix or the rest).
  int64_t dense_offset(int64_t j) const {
    return (j < shared_len ? j : j - shared_len) * ld_kv + head_offset;
  }

  // Key (or value) row j's first value: a float, or a half when `half`. Found once per
  // row (the paged lookup divides), then read with load().
  const void* row_start(bool key, int64_t j) const {
    if (!half) return row(key, j);
    const bool shared = j < shared_len;
    const uint16_t* base = key ? (shared ? k16_shared : k16) : (shared ? v16_shared : v16);
    return base + dense_offset(j);
  }

  // Eight values from dimension d of a row row_start() gave, widened to fp32.
  __m256 load(const void* row_at, int64_t d) const {
    if (!half) return _mm256_loadu_ps(static_cast<const float*>(row_at) + d);
    const auto* p = static_cast<const uint16_t*>(row_at) + d;
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// The union of the non-empty ranges, {max, 0} when there is none.
KeyRange key_union(std::span<const KeyRange> ranges) {
  KeyRange u{std::numeric_limits<int64_t>::max(), 0};
  for (const KeyRange& r : ranges) {
    if (r.end <= r.begin) continue;
    u.begin = std::min(u.begin, r.begin);
    u.end = std::max(u.end, r.end);
  }
  return u;
}

// Keys [begin, begin + nk) packed for a task, zero-padded to nk16.
struct PackedKeys {
  int64_t begin, nk16;
  const float* kt;  // [nk16 / 16][hd][16]
  const float* v;   // [hd / 16][nk16][16]
  // bf16 attention: the same panels as bf16 pairs along their rows (head dims for kt,
  // keys for v), at the same element offsets. Null otherwise.
  const uint16_t* kt16 = nullptr;
  const uint16_t* v16 = nullptr;
  // A decode task's values are read in place, page by page, instead (v is null).
  const KeySource* v_in_place = nullptr;
};

PackedKeys pack_keys(const KeySource& src, int64_t kb, int64_t ke, bool bf16, bool values_in_place,
                     ScratchScope& scratch) {
  const int64_t hd = src.head_dim, nk = ke - kb, nk16 = (nk + kPanel - 1) / kPanel * kPanel;
  const std::span<float> kt = scratch.arena().alloc<float>(static_cast<size_t>(hd * nk16));
  for (int64_t j0 = 0; j0 < nk16; j0 += 8) {
    float* panel = kt.data() + (j0 / kPanel) * hd * kPanel + j0 % kPanel;
    const void* rows[8];
    for (int64_t u = 0; u < 8; ++u)
      rows[u] = j0 + u < nk ? src.row_start(true, kb + j0 + u) : nullptr;
    for (int64_t d0 = 0; d0 < hd; d0 += 8) {
      __m256 r[8];
      for (int64_t u = 0; u < 8; ++u)
        r[u] = rows[u] != nullptr ? src.load(rows[u], d0) : _mm256_setzero_ps();
      transpose8x8(r);
      for (int64_t u = 0; u < 8; ++u) _mm256_storeu_ps(panel + (d0 + u) * kPanel, r[u]);
    }
  }
  if (values_in_place) {
    PackedKeys keys{kb, nk16, kt.data(), nullptr};
    keys.v_in_place = &src;
    return keys;
  }
  const std::span<float> vp = scratch.arena().alloc<float>(static_cast<size_t>(hd * nk16));
  for (int64_t j = 0; j < nk16; ++j) {
    const void* row = j < nk ? src.row_start(false, kb + j) : nullptr;
    for (int64_t d0 = 0; d0 < hd; d0 += 8) {
      const __m256 x = row != nullptr ? src.load(row, d0) : _mm256_setzero_ps();
      _mm256_storeu_ps(vp.data() + (d0 / kPanel) * nk16 * kPanel + j * kPanel + d0 % kPanel, x);
    }
  }
  PackedKeys keys{kb, nk16, kt.data(), vp.data()};
  if (bf16) {
    const std::span<uint16_t> kt16 = scratch.arena().alloc<uint16_t>(kt.size());
    const std::span<uint16_t> v16 = scratch.arena().alloc<uint16_t>(vp.size());
    for (int64_t p = 0; p < nk16 / kPanel; ++p)
      pair_panel_bf16(kt.data() + p * hd * kPanel, hd, kt16.data() + p * hd * kPanel);
    for (int64_t p = 0; p < hd / kPanel; ++p)
      pair_panel_bf16(vp.data() + p * nk16 * kPanel, nk16, v16.data() + p * nk16 * kPanel);
    keys.kt16 = kt16.data();
    keys.v16 = v16.data();
  }
  return keys;
}

struct QueryBlock {
  const float* q;  // first row of the block
  int64_t ld_q;
  float* out;  // first output row
  int64_t ld_o;
  int64_t rows;
  const KeyRange* ranges;  // per row, inside the packed keys
};

void attend_dense_block(const QueryBlock& b, const PackedKeys& keys, int64_t hd, float scale,
                        ScratchScope& scratch) {
  auto [kb, ke] = key_union({b.ranges, static_cast<size_t>(b.rows)});
  if (ke <= kb) {
    for (int64_t i = 0; i < b.rows; ++i)
      std::fill(b.out + i * b.ld_o, b.out + i * b.ld_o + hd, 0.0f);
    return;
  }
  // The block reads whole 16-key panels: start at the panel holding its first key.
  const int64_t off = (kb - keys.begin) / kPanel * kPanel;
  kb = keys.begin + off;
  const int64_t nk = ke - kb, nk16 = (nk + kPanel - 1) / kPanel * kPanel;
  const std::span<float> sc = scratch.arena().alloc<float>(static_cast<size_t>(b.rows * nk16));
  if (keys.kt16 != nullptr) {
    gemm_bf16_panels(b.q, b.ld_q, b.rows, hd, keys.kt16 + off * hd, hd * kPanel, nk16 / kPanel,
                     sc.data(), nk16);
  } else {
    gemm_f32_panels(b.q, b.ld_q, b.rows, hd, keys.kt + off * hd, kPanel, hd * kPanel, nk16 / kPanel,
                    sc.data(), nk16);
  }
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
    const float mx = raw_max * scale;
    const __m256 vscale = _mm256_set1_ps(scale), vmx = _mm256_set1_ps(mx);
    std::fill(srow, srow + lo, 0.0f);
    std::fill(srow + hi, srow + nk16, 0.0f);
    // The sum in two float vectors (eight lanes of at most a few hundred terms each).
    __m256 sum_a = _mm256_setzero_ps(), sum_b = _mm256_setzero_ps();
    int64_t j = lo;
    for (; j + 16 <= hi; j += 16) {
      const __m256 p0 = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(srow + j), vscale, vmx));
      const __m256 p1 = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(srow + j + 8), vscale, vmx));
      _mm256_storeu_ps(srow + j, p0);
      _mm256_storeu_ps(srow + j + 8, p1);
      sum_a = _mm256_add_ps(sum_a, p0);
      sum_b = _mm256_add_ps(sum_b, p1);
    }
    for (; j + 8 <= hi; j += 8) {
      const __m256 p = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(srow + j), vscale, vmx));
      _mm256_storeu_ps(srow + j, p);
      sum_a = _mm256_add_ps(sum_a, p);
    }
    const __m256 sum8 = _mm256_add_ps(sum_a, sum_b);
    double sum = hsum256d(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(sum8)),
                                        _mm256_cvtps_pd(_mm256_extractf128_ps(sum8, 1))));
    for (; j < hi; ++j) {
      srow[j] = std::exp(srow[j] * scale - mx);
      sum += srow[j];
    }
    inv_sum[static_cast<size_t>(i)] = static_cast<float>(1.0 / sum);
  }
  // O = P·V over the block's keys, then each row times its 1/sum.
  if (keys.v16 != nullptr) {
    gemm_bf16_panels(sc.data(), nk16, b.rows, nk, keys.v16 + off * kPanel, keys.nk16 * kPanel,
                     hd / kPanel, b.out, b.ld_o);
  } else if (keys.v_in_place != nullptr) {
    // Page by page: a page's value rows are kv_row apart, its 16-wide column panels 16.
    const KeySource& src = *keys.v_in_place;
    for (int64_t j = kb; j < ke;) {
      const int64_t page_end = std::min(ke, (j / src.block_size + 1) * src.block_size);
      gemm_f32_panels(sc.data() + (j - kb), nk16, b.rows, page_end - j, src.row(false, j),
                      src.kv_row, kPanel, hd / kPanel, b.out, b.ld_o, j > kb);
      j = page_end;
    }
  } else {
    gemm_f32_panels(sc.data(), nk16, b.rows, nk, keys.v + off * kPanel, kPanel, keys.nk16 * kPanel,
                    hd / kPanel, b.out, b.ld_o);
  }
  for (int64_t i = 0; i < b.rows; ++i) {
    const __m256 inv = _mm256_set1_ps(inv_sum[static_cast<size_t>(i)]);
    float* o = b.out + i * b.ld_o;
    for (int64_t d = 0; d < hd; d += 8)
      _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), inv));
  }
}

struct HeadLayout {
  int64_t head_dim, group;  // group: query heads per kv head
  int64_t ld_q, ld_o;
  float scale;
};

// Queries [q0, q1) of one sequence against kv head kvh, with the `group` query heads that
// share it: row r of the task is query q0 + r / group, head kvh · group + r % group.
void attend_group(const KeySource& src, const AttentionSeq& sq, const AttentionArgs& a,
                  const HeadLayout& l, int64_t kvh, int64_t q0, int64_t q1, ScratchScope& scratch) {
  const int64_t hd = l.head_dim, group = l.group, ld_q = l.ld_q, ld_o = l.ld_o;
  const int64_t rows = (q1 - q0) * group;
  const std::span<KeyRange> ranges = scratch.arena().alloc<KeyRange>(static_cast<size_t>(rows));
  for (int64_t i = q0; i < q1; ++i) {
    const KeyRange r = visible_keys(a, sq.q_pos0 + i, sq.kv_len);
    for (int64_t h = 0; h < group; ++h) ranges[static_cast<size_t>((i - q0) * group + h)] = r;
  }
  const auto [kb, ke] = key_union(ranges);
  // A decode task (one query) reads each value once: from its pages in place, not copied
  // (see above). Prefill tasks keep the copy: their row blocks read V again and again.
  const bool values_in_place = src.block_table != nullptr && !a.bf16 && q1 - q0 == 1;
  const PackedKeys keys =
      ke > kb ? pack_keys(src, kb, ke, a.bf16, values_in_place, scratch) : PackedKeys{0, 0, {}, {}};
  // One head per kv head: the rows are the queries, read and written in place. Several:
  // a query's heads are hd apart, its next query's ld_q, so the rows are gathered into one
  // matrix (and the output scattered back), hd values a row against nk · hd of work.
  const float* q = sq.q + q0 * ld_q + kvh * group * hd;
  float* out = sq.out + q0 * ld_o + kvh * group * hd;
  int64_t lq = ld_q, lo = ld_o;
  std::span<float> gathered;
  if (group > 1) {
    gathered = scratch.arena().alloc<float>(static_cast<size_t>(2 * rows * hd));
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(q + (r / group) * ld_q + (r % group) * hd, hd, gathered.data() + r * hd);
    q = gathered.data();
    out = gathered.data() + rows * hd;
    lq = lo = hd;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kTileQueries) {
    const QueryBlock b{q + r0 * lq,       lq, out + r0 * lo, lo, std::min(kTileQueries, rows - r0),
                       ranges.data() + r0};
    attend_dense_block(b, keys, hd, l.scale, scratch);
  }
  if (group > 1) {
    float* dst = sq.out + q0 * ld_o + kvh * group * hd;
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(out + r * hd, hd, dst + (r / group) * ld_o + (r % group) * hd);
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
  if (a.bf16) {
    if (!cpu_has_bf16()) fail("attention: bf16 products need a CPU with AVX512_BF16");
    for (const AttentionSeq& sq : seqs) {
      if (sq.q_rel != nullptr || sq.bias != nullptr || a.head_dim % kPanel != 0)
        fail(
            "attention: bf16 needs no relative term or bias and a head size that is a "
            "multiple of 16");
    }
  }
  const int64_t hd = a.head_dim, group = a.num_heads / a.num_kv_heads;
  const int64_t ld_q = a.ld_q > 0 ? a.ld_q : a.num_heads * hd;
  const int64_t ld_o = a.ld_out > 0 ? a.ld_out : a.num_heads * hd;
  const float scale = a.scale > 0 ? a.scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t kv_row = a.num_kv_heads * hd;
  const int64_t ld_kv = a.ld_kv > 0 ? a.ld_kv : kv_row;
  const int64_t ld_rel = a.num_heads * hd;

  // Tasks: (sequence, head, block of queries); on the tiled path (sequence, kv head, block
  // of queries), the block sized so that its rows (queries × the group's heads) fill a task.
  auto tiled = [&](const AttentionSeq& sq) {
    return sq.q_rel == nullptr && sq.bias == nullptr && hd % kPanel == 0;
  };
  constexpr int64_t kQueries = 16;
  struct Task {
    size_t seq;
    int64_t head, q0, q1;  // head: a kv head on the tiled path
  };
  std::vector<Task> tasks;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].q_len > 0 && seqs[s].kv_len <= 0)
      fail("attention: a sequence has queries but no keys");
    const bool by_kv_head = tiled(seqs[s]);
    const int64_t block = by_kv_head ? std::max<int64_t>(1, kTaskQueries / group) : kQueries;
    for (int64_t h = 0; h < (by_kv_head ? a.num_kv_heads : a.num_heads); ++h) {
      for (int64_t q = 0; q < seqs[s].q_len; q += block) {
        tasks.push_back({s, h, q, std::min(seqs[s].q_len, q + block)});
      }
    }
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t ti) {
    const Task& t = tasks[static_cast<size_t>(ti)];
    const AttentionSeq& sq = seqs[t.seq];
    const int64_t kvh = tiled(sq) ? t.head : t.head / group;
    const KeySource src{sq.block_table, a.k_pool, a.v_pool,    a.block_size,  kv_row,
                        sq.k,           sq.v,     sq.k_shared, sq.v_shared,   sq.shared_len,
                        sq.kv_half,     sq.k16,   sq.v16,      sq.k16_shared, sq.v16_shared,
                        ld_kv,          kvh * hd, hd};
    // Per-thread scratch, so a decode step makes no heap allocation per head.
    ScratchScope scratch;
    if (tiled(sq)) {
      attend_group(src, sq, a, {hd, group, ld_q, ld_o, scale}, kvh, t.q0, t.q1, scratch);
      return;
    }
    const std::span<float> scores =
        scratch.arena().alloc<float>(static_cast<size_t>(sq.kv_len + 8));
    const std::span<float> acc = scratch.arena().alloc<float>(static_cast<size_t>(hd));
    for (int64_t i = t.q0; i < t.q1; ++i) {
      const KeyRange r = visible_keys(a, sq.q_pos0 + i, sq.kv_len);
      float* out = sq.out + i * ld_o + t.head * hd;
      if (r.end <= r.begin) {
        std::fill(out, out + hd, 0.0f);
        continue;
      }
      const float* q = sq.q + i * ld_q + t.head * hd;
      const float* bias =
          sq.bias != nullptr ? sq.bias + (t.head * sq.q_len + i) * sq.kv_len : nullptr;
      const float* q_rel = sq.q_rel != nullptr ? sq.q_rel + i * ld_q + t.head * hd : nullptr;
      const int64_t pos = sq.q_pos0 + i;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = r.begin; j < r.end; ++j) {
        float sc = dot(q, src.row(true, j), hd);
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
        axpy(scores[static_cast<size_t>(j)] * inv, src.row(false, j), acc.data(), hd);
      }
      std::copy(acc.begin(), acc.end(), out);
    }
  });
}

}  // namespace cosy::cpu
