#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/scratch.h"

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
    if (!paged && sq.q_len > 0 && (sq.k == nullptr || sq.v == nullptr))
      fail("attention: a sequence has neither a block table nor dense keys");
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
      for (int64_t q = 0; q < seqs[s].q_len; q += kQueries) {
        tasks.push_back({s, h, q, std::min(seqs[s].q_len, q + kQueries)});
      }
    }
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t ti) {
    const Task& t = tasks[static_cast<size_t>(ti)];
    const AttentionSeq& sq = seqs[t.seq];
    const int64_t kvh = t.head / group;
    const float* dense_k = sq.k != nullptr ? sq.k + kvh * hd : nullptr;
    const float* dense_v = sq.v != nullptr ? sq.v + kvh * hd : nullptr;
    auto row = [&](const float* pool_base, const float* dense, int64_t j) {
      if (sq.block_table == nullptr) return dense + j * ld_kv;
      const int64_t block = sq.block_table[j / a.block_size];
      return pool_base + (block * a.block_size + j % a.block_size) * kv_row + kvh * hd;
    };
    // Per-thread scratch, so a decode step makes no heap allocation per head.
    ScratchScope scratch;
    const std::span<float> scores = scratch.arena().alloc<float>(static_cast<size_t>(sq.kv_len));
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
        float sc = dot(q, row(a.k_pool, dense_k, j), hd);
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
        axpy(scores[static_cast<size_t>(j)] * inv, row(a.v_pool, dense_v, j), acc.data(), hd);
      }
      std::copy(acc.begin(), acc.end(), out);
    }
  });
}

}  // namespace cosy::cpu
