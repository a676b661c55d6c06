#include "kernels/machine_limits.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace cosy::bench {

namespace {

// 12 independent FMA chains: enough to cover the FMA latency on two pipes. Each chain
// starts from its own value: identical chains are folded into one by the compiler, and
// the probe then over-reports the peak twelvefold.
__attribute__((noinline)) float fma_loop(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f), a2 = _mm256_set1_ps(0.12f);
  __m256 a3 = _mm256_set1_ps(0.13f), a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f);
  __m256 a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f), a8 = _mm256_set1_ps(0.18f);
  __m256 a9 = _mm256_set1_ps(0.19f), a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    a10 = _mm256_fmadd_ps(a10, m, c);
    a11 = _mm256_fmadd_ps(a11, m, c);
  }
  const __m256 s =
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                    _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                  _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

// The same 12 chains on zmm: a core with two 512-bit FMA units does twice the ymm rate,
// and a peak measured on ymm alone would report AVX-512 kernels above 100 %.
__attribute__((noinline, target("avx512f"))) float fma_loop_512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.10f), a1 = _mm512_set1_ps(0.11f), a2 = _mm512_set1_ps(0.12f);
  __m512 a3 = _mm512_set1_ps(0.13f), a4 = _mm512_set1_ps(0.14f), a5 = _mm512_set1_ps(0.15f);
  __m512 a6 = _mm512_set1_ps(0.16f), a7 = _mm512_set1_ps(0.17f), a8 = _mm512_set1_ps(0.18f);
  __m512 a9 = _mm512_set1_ps(0.19f), a10 = _mm512_set1_ps(0.20f), a11 = _mm512_set1_ps(0.21f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_fmadd_ps(a0, m, c);
    a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c);
    a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c);
    a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c);
    a11 = _mm512_fmadd_ps(a11, m, c);
  }
  const __m512 s =
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                    _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                                  _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}

__attribute__((noinline)) float read_sum(const float* p, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return out[0];
}

// The same sum over four sequential streams at once (the four quarters of the range),
// as a GEMV over four weight panels reads: more misses in flight than one stream keeps, which
// some memory systems need to reach their rate.
__attribute__((noinline)) float read_sum_4(const float* p, size_t n) {
  const size_t q = n / 4 / 32 * 32;
  const float* p0 = p;
  const float* p1 = p + q;
  const float* p2 = p + 2 * q;
  const float* p3 = p + 3 * q;
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 16 <= q; i += 16) {
    s0 = _mm256_add_ps(s0, _mm256_add_ps(_mm256_load_ps(p0 + i), _mm256_load_ps(p0 + i + 8)));
    s1 = _mm256_add_ps(s1, _mm256_add_ps(_mm256_load_ps(p1 + i), _mm256_load_ps(p1 + i + 8)));
    s2 = _mm256_add_ps(s2, _mm256_add_ps(_mm256_load_ps(p2 + i), _mm256_load_ps(p2 + i + 8)));
    s3 = _mm256_add_ps(s3, _mm256_add_ps(_mm256_load_ps(p3 + i), _mm256_load_ps(p3 + i + 8)));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return out[0];
}

}  // namespace

double time_best(const std::function<void()>& fn, double budget_s) {
  using clock = std::chrono::steady_clock;
  fn();  // warm-up
  double best = 1e30, total = 0;
  int runs = 0;
  while (total < budget_s || runs < 3) {
    const auto t0 = clock::now();
    fn();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
    ++runs;
  }
  return best;
}

MachineLimits measure_machine(ThreadPool& pool) {
  MachineLimits m;
  const int threads = pool.num_threads();
  const int64_t iters = 20'000'000;
  // Each thread keeps its result in its own slot (read at the end so nothing is optimised
  // away); one shared variable would be a data race.
  std::vector<float> sinks(static_cast<size_t>(threads), 0.0f);
  const double t = time_best(
      [&] {
        pool.parallel_for(threads,
                          [&](int64_t i) { sinks[static_cast<size_t>(i)] += fma_loop(iters); });
      },
      0.5);
  m.peak_gflops_256 =
      static_cast<double>(threads) * static_cast<double>(iters) * 12 * 8 * 2 / t / 1e9;
  m.peak_gflops = m.peak_gflops_256;
  m.fma_bits = 256;
  if (__builtin_cpu_supports("avx512f") != 0) {
    const double t512 = time_best(
        [&] {
          pool.parallel_for(threads, [&](int64_t i) {
            sinks[static_cast<size_t>(i)] += fma_loop_512(iters / 2);
          });
        },
        0.5);
    const double gflops_512 =
        static_cast<double>(threads) * static_cast<double>(iters / 2) * 12 * 16 * 2 / t512 / 1e9;
    if (gflops_512 > m.peak_gflops) {
      m.peak_gflops = gflops_512;
      m.fma_bits = 512;
    }
  }

  const size_t n = size_t{256} << 20;  // 1 GiB of floats, far beyond the caches
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  // Distinct values, not zeros: a hypervisor may merge identical (zero) pages into one
  // physical page, and reads of it would then hit the caches.
  pool.parallel_range(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<float>(i);
  });
  const double tr = time_best(
      [&] {
        pool.parallel_for(threads, [&](int64_t i) {
          const size_t per = n / static_cast<size_t>(threads);
          sinks[static_cast<size_t>(i)] += read_sum(buf + static_cast<size_t>(i) * per, per);
        });
      },
      1.0);
  const double tr4 = time_best(
      [&] {
        pool.parallel_for(threads, [&](int64_t i) {
          const size_t per = n / static_cast<size_t>(threads);
          sinks[static_cast<size_t>(i)] += read_sum_4(buf + static_cast<size_t>(i) * per, per);
        });
      },
      1.0);
  // The faster of one stream and four per thread (four read the same bytes, less at most
  // 32 floats per quarter).
  m.dram_read_gbps = static_cast<double>(n * sizeof(float)) / std::min(tr, tr4) / 1e9;
  std::free(buf);
  volatile float keep = 0;
  for (const float v : sinks) keep = keep + v;
  return m;
}

}  // namespace cosy::bench
