#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/reference.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using testing::random_vector;
using testing::rounded_to_bf16;

struct Shape3 {
  int64_t m, n, k;
};

std::vector<float> run_linear(ThreadPool& pool, const std::vector<float>& x, int64_t m, int64_t k,
                              int64_t lda, const cpu::PackedWeight& w, const float* bias,
                              int64_t ldc, std::vector<float> c, bool accumulate) {
  cpu::GemmProblem p{{x.data(), lda, 1, 0, k}, m, c.data(), ldc};
  cpu::gemm(pool, {&p, 1}, w, {bias, accumulate});
  return c;
}

cpu::PackedWeight pack(const std::vector<float>& w, int64_t n, int64_t k, WeightFormat f) {
  return cpu::PackedWeight(n, k, f,
                           [&](int64_t r, int64_t c) { return w[static_cast<size_t>(r * k + c)]; });
}

TEST(Gemm, MatchesReferenceOnOddShapes) {
  ThreadPool pool(2);
  const Shape3 shapes[] = {{1, 1, 1},   {1, 17, 5},    {2, 16, 300},  {5, 33, 7},     {6, 48, 257},
                           {7, 15, 64}, {13, 100, 33}, {64, 96, 600}, {100, 31, 513}, {1, 896, 896},
                           {8, 40, 70}, {9, 17, 300},  {80, 33, 256}, {98, 20, 40}};
  uint32_t seed = 1;
  for (const auto& s : shapes) {
    const auto x = random_vector(static_cast<size_t>(s.m * s.k), seed++);
    const auto w = random_vector(static_cast<size_t>(s.n * s.k), seed++);
    const auto b = random_vector(static_cast<size_t>(s.n), seed++);
    const auto expect = ref::linear(x, s.m, s.k, w, s.n, b.data());
    const auto got =
        run_linear(pool, x, s.m, s.k, s.k, pack(w, s.n, s.k, WeightFormat::F32), b.data(), s.n,
                   std::vector<float>(static_cast<size_t>(s.m * s.n)), false);
    EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 2e-5 * std::sqrt(double(s.k)))
        << s.m << "x" << s.n << "x" << s.k;
  }
}

TEST(Gemm, StridedOperandsAndAccumulate) {
  ThreadPool pool(2);
  const int64_t m = 11, n = 21, k = 37, lda = 50, ldc = 29;
  const auto x = random_vector(static_cast<size_t>(m * lda), 5);
  const auto w = random_vector(static_cast<size_t>(n * k), 6);
  std::vector<float> dense(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j)
      dense[static_cast<size_t>(i * k + j)] = x[static_cast<size_t>(i * lda + j)];
  const auto expect = ref::linear(dense, m, k, w, n, nullptr);
  const auto c0 = random_vector(static_cast<size_t>(m * ldc), 7);
  const auto got =
      run_linear(pool, x, m, k, lda, pack(w, n, k, WeightFormat::F32), nullptr, ldc, c0, true);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j < n) {
        EXPECT_NEAR(got[at], c0[at] + expect[static_cast<size_t>(i * n + j)], 1e-4);
      } else {
        EXPECT_EQ(got[at], c0[at]) << "wrote outside the output columns";
      }
    }
  }
}

TEST(Gemm, OneAndTwoThreadsGiveIdenticalResults) {
  ThreadPool one(1), two(2);
  const int64_t m = 77, n = 130, k = 700;
  const auto x = random_vector(static_cast<size_t>(m * k), 8);
  const auto w = random_vector(static_cast<size_t>(n * k), 9);
  const auto pw = pack(w, n, k, WeightFormat::F32);
  const auto a =
      run_linear(one, x, m, k, k, pw, nullptr, n, std::vector<float>(size_t(m * n)), false);
  const auto b =
      run_linear(two, x, m, k, k, pw, nullptr, n, std::vector<float>(size_t(m * n)), false);
  EXPECT_EQ(a, b);
}

TEST(Gemm, BatchOfProblemsEqualsSeparateCalls) {
  ThreadPool pool(2);
  const int64_t n = 40, k = 90;
  const auto w = random_vector(static_cast<size_t>(n * k), 10);
  const auto pw = pack(w, n, k, WeightFormat::F32);
  const int64_t ms[] = {1, 9, 64, 3};
  std::vector<std::vector<float>> xs, separate, batched;
  std::vector<cpu::GemmProblem> problems;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(random_vector(static_cast<size_t>(ms[i] * k), 20 + static_cast<uint32_t>(i)));
    separate.push_back(run_linear(pool, xs.back(), ms[i], k, k, pw, nullptr, n,
                                  std::vector<float>(size_t(ms[i] * n)), false));
    batched.emplace_back(static_cast<size_t>(ms[i] * n));
  }
  for (int i = 0; i < 4; ++i)
    problems.push_back({{xs[size_t(i)].data(), k, 1, 0, k}, ms[i], batched[size_t(i)].data(), n});
  cpu::gemm(pool, problems, pw, {});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(batched[size_t(i)], separate[size_t(i)]);
}

// The one-row (decode) micro-kernel, with its four k chains and k tail, against the
// 6-row kernel on the same row, in every weight format: a 7-row problem runs rows 0-5 on
// the 6-row kernel and row 6 on the one-row kernel; row 6 repeats row 0.
TEST(Gemm, DecodeRowMatchesTheBlockKernelInEveryFormat) {
  ThreadPool pool(2);
  const int64_t m = 7, n = 53, k = 1031;  // k: four 256-blocks and a tail of 7
  auto x = random_vector(static_cast<size_t>(m * k), 40);
  std::copy_n(x.begin(), k, x.begin() + 6 * k);
  const auto w = random_vector(static_cast<size_t>(n * k), 41, 0.05f);
  for (WeightFormat f : {WeightFormat::F32, WeightFormat::F16, WeightFormat::I8}) {
    const auto y = run_linear(pool, x, m, k, k, pack(w, n, k, f), nullptr, n,
                              std::vector<float>(size_t(m * n)), false);
    EXPECT_LT(max_abs_diff(y.data(), y.data() + 6 * n, static_cast<size_t>(n)), 1e-5)
        << weight_format_name(f);
    EXPECT_NE(y[0], 0.0f);
  }
}

// Reduced-precision weights against fp32 on a decoder-like shape; the errors are reported
// so a regression in the quantiser shows up, and bounded by what the format allows.
TEST(Gemm, ReducedPrecisionWeightAccuracy) {
  ThreadPool pool(2);
  const int64_t m = 16, n = 256, k = 896;
  const auto x = random_vector(static_cast<size_t>(m * k), 30);
  const auto w = random_vector(static_cast<size_t>(n * k), 31, 0.05f);
  const auto expect = ref::linear(x, m, k, w, n, nullptr);
  const double scale = max_abs(expect);
  for (WeightFormat f : {WeightFormat::F16, WeightFormat::I8}) {
    const auto got = run_linear(pool, x, m, k, k, pack(w, n, k, f), nullptr, n,
                                std::vector<float>(size_t(m * n)), false);
    const double rel = max_abs_diff(got.data(), expect.data(), got.size()) / scale;
    std::printf("[ accuracy ] %s weights: max |error| / max |y| = %.2e\n", weight_format_name(f),
                rel);
    EXPECT_LT(rel, f == WeightFormat::F16 ? 2e-3 : 2e-2) << weight_format_name(f);
    EXPECT_GT(rel, 0.0) << "a reduced format that is exact was not quantised";
  }
}

// What a reduced format must equal: a float linear y = x wᵀ + b on the format's view of
// the operands.
using ReferenceLinear =
    std::function<std::vector<float>(const std::vector<float>& x, int64_t m, int64_t k,
                                     const std::vector<float>& w, int64_t n, const float* bias)>;

// Odd M, N and K (row tails, a lone last panel, a padded last unit of k), strided A and
// C, accumulate, and several problems on one weight: each equals `reference`, up to the
// order of the sums; and the format is not exact (it differs from float32 by far more).
void expect_format_matches(WeightFormat format, const ReferenceLinear& reference) {
  ThreadPool pool(2);
  const Shape3 shapes[] = {{1, 1, 1},      {1, 17, 5},  {2, 16, 300},   {5, 33, 7},
                           {6, 48, 257},   {7, 15, 64}, {13, 100, 33},  {64, 96, 600},
                           {100, 31, 513}, {9, 40, 70}, {160, 64, 256}, {200, 48, 32}};
  uint32_t seed = 300;
  for (const auto& s : shapes) {
    const auto x = random_vector(static_cast<size_t>(s.m * s.k), seed++);
    const auto w = random_vector(static_cast<size_t>(s.n * s.k), seed++);
    const auto b = random_vector(static_cast<size_t>(s.n), seed++);
    const auto expect = reference(x, s.m, s.k, w, s.n, b.data());
    const auto got = run_linear(pool, x, s.m, s.k, s.k, pack(w, s.n, s.k, format), b.data(), s.n,
                                std::vector<float>(static_cast<size_t>(s.m * s.n)), false);
    EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 2e-5 * std::sqrt(double(s.k)))
        << s.m << "x" << s.n << "x" << s.k;
    if (s.k >= 64) {
      const auto exact = ref::linear(x, s.m, s.k, w, s.n, b.data());
      EXPECT_GT(max_abs_diff(got.data(), exact.data(), got.size()), 1e-3);
    }
  }
  // Strided A and C, accumulate; two problems of different lengths on one weight.
  const int64_t n = 37, k = 45, lda = 50, ldc = 41;
  const auto w = random_vector(static_cast<size_t>(n * k), 7);
  const auto packed = pack(w, n, k, format);
  const int64_t rows[2] = {11, 3};
  std::vector<std::vector<float>> xs, cs, c0s;
  std::vector<cpu::GemmProblem> problems;
  for (int i = 0; i < 2; ++i) {
    xs.push_back(random_vector(static_cast<size_t>(rows[i] * lda), 8 + i));
    c0s.push_back(random_vector(static_cast<size_t>(rows[i] * ldc), 10 + i));
    cs.push_back(c0s.back());
  }
  for (int i = 0; i < 2; ++i)
    problems.push_back({{xs[i].data(), lda, 1, 0, k}, rows[i], cs[i].data(), ldc});
  cpu::gemm(pool, problems, packed, {nullptr, true});
  for (int i = 0; i < 2; ++i) {
    std::vector<float> dense(static_cast<size_t>(rows[i] * k));
    for (int64_t r = 0; r < rows[i]; ++r)
      for (int64_t j = 0; j < k; ++j)
        dense[static_cast<size_t>(r * k + j)] = xs[i][static_cast<size_t>(r * lda + j)];
    const auto expect = reference(dense, rows[i], k, w, n, nullptr);
    for (int64_t r = 0; r < rows[i]; ++r) {
      for (int64_t j = 0; j < ldc; ++j) {
        const size_t at = static_cast<size_t>(r * ldc + j);
        if (j < n) {
          EXPECT_NEAR(cs[i][at], c0s[i][at] + expect[static_cast<size_t>(r * n + j)], 1e-4);
        } else {
          EXPECT_EQ(cs[i][at], c0s[i][at]) << "wrote outside the output columns";
        }
      }
    }
  }
}

// bf16: float32 arithmetic on the bf16-rounded operands.
TEST(Gemm, Bf16EqualsFloatArithmeticOnRoundedOperands) {
  if (!cpu::cpu_has_bf16()) {
    EXPECT_THROW(pack({1.0f}, 1, 1, WeightFormat::BF16), Error);
    GTEST_SKIP() << "this CPU has no AVX512_BF16; bf16 weights are refused (checked)";
  }
  expect_format_matches(WeightFormat::BF16,
                        [](const std::vector<float>& x, int64_t m, int64_t k,
                           const std::vector<float>& w, int64_t n, const float* bias) {
                          return ref::linear(rounded_to_bf16(x), m, k, rounded_to_bf16(w), n, bias);
                        });
}

// bf16 on AMX tiles: the same bound against float32 arithmetic on the rounded operands as
// the AVX512_BF16 kernel, every tail (rows, columns, k) included; sums in another order than
// that kernel's; and a row's result is the same whatever rows share its call.
TEST(Gemm, Bf16OnAmxTilesMatchesTheRoundedReference) {
  if (!cpu::cpu_has_amx_bf16()) {
    if (!cpu::cpu_has_amx_int8()) EXPECT_THROW(cpu::set_amx(true), Error);  // no tiles at all
    EXPECT_FALSE(cpu::bf16_uses_amx());
    GTEST_SKIP() << "this CPU (or its OS) has no AMX-BF16; bf16 runs on AVX512_BF16 (checked)";
  }
  ASSERT_TRUE(cpu::bf16_uses_amx());  // the default where the tiles are there
  const testing::AmxRestore restore;
  auto reference = [](const std::vector<float>& x, int64_t m, int64_t k,
                      const std::vector<float>& w, int64_t n, const float* bias) {
    return ref::linear(rounded_to_bf16(x), m, k, rounded_to_bf16(w), n, bias);
  };
  expect_format_matches(WeightFormat::BF16, reference);
  cpu::set_amx(false);  // and the AVX512_BF16 kernel, which runs bf16 elsewhere
  expect_format_matches(WeightFormat::BF16, reference);
  cpu::set_amx(true);

  ThreadPool pool(2);
  const int64_t m = 70, n = 40, k = 600;  // 2 blocks of 32 rows and 6; k: 18 tiles and 24 pairs
  const auto x = random_vector(static_cast<size_t>(m * k), 41);
  const auto w = random_vector(static_cast<size_t>(n * k), 42);
  const auto packed = pack(w, n, k, WeightFormat::BF16);
  const std::vector<float> zeros(static_cast<size_t>(m * n));
  const auto amx = run_linear(pool, x, m, k, k, packed, nullptr, n, zeros, false);
  cpu::set_amx(false);
  const auto avx512 = run_linear(pool, x, m, k, k, packed, nullptr, n, zeros, false);
  cpu::set_amx(true);
  EXPECT_NE(amx, avx512) << "the AMX kernel gave the AVX512_BF16 kernel's bits: did it run?";
  for (const int64_t row : {int64_t{0}, int64_t{37}, m - 1}) {
    const std::vector<float> one(x.begin() + row * k, x.begin() + (row + 1) * k);
    const auto alone = run_linear(pool, one, 1, k, k, packed, nullptr, n,
                                  std::vector<float>(static_cast<size_t>(n)), false);
    EXPECT_TRUE(std::equal(alone.begin(), alone.end(), amx.begin() + row * n)) << "row " << row;
  }
}

// Symmetric int8 of `v`'s rows of `width` values in groups of `group` (max |v| of a group
// → 127): the values and each group's scale ([rows][groups]), as the w8a8 GEMM computes
// them. Activations multiply by 127 / max; weights divide by their scale (PackedWeight).
std::vector<int32_t> quantised_groups(const std::vector<float>& v, int64_t rows, int64_t width,
                                      int64_t group, bool activations, std::vector<float>& scale) {
  const int64_t groups = (width + group - 1) / group;
  std::vector<int32_t> q(v.size());
  scale.assign(static_cast<size_t>(rows * groups), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * group, c1 = std::min(width, c0 + group);
      float amax = 0;
      for (int64_t c = c0; c < c1; ++c)
        amax = std::max(amax, std::fabs(v[static_cast<size_t>(r * width + c)]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      const float s = activations ? amax / 127.0f : (amax > 0 ? amax / 127.0f : 1.0f);
      scale[static_cast<size_t>(r * groups + g)] = s;
      for (int64_t c = c0; c < c1; ++c) {
        const float x = v[static_cast<size_t>(r * width + c)];
        const float y = activations ? x * inv : x / s;
        q[static_cast<size_t>(r * width + c)] =
            static_cast<int32_t>(std::clamp(std::nearbyint(y), -127.0f, 127.0f));
      }
    }
  }
  return q;
}

// w8a8: per group of k, exact integer sums of the int8 operands times the group's scale;
// their sum times the column's scale.
TEST(Gemm, W8a8EqualsIntegerArithmeticOnQuantisedOperands) {
  if (!cpu::cpu_has_vnni()) {
    EXPECT_THROW(pack({1.0f}, 1, 1, WeightFormat::W8A8), Error);
    GTEST_SKIP() << "this CPU has no AVX512-VNNI; w8a8 weights are refused (checked)";
  }
  expect_format_matches(WeightFormat::W8A8, [](const std::vector<float>& x, int64_t m, int64_t k,
                                               const std::vector<float>& w, int64_t n,
                                               const float* bias) {
    const int64_t group = cpu::kW8a8GroupK, groups = (k + group - 1) / group;
    std::vector<float> xs, ws;
    const auto qx = quantised_groups(x, m, k, group, true, xs);
    const auto qw = quantised_groups(w, n, k, k, false, ws);
    std::vector<float> y(static_cast<size_t>(m * n));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        double total = 0;
        for (int64_t g = 0; g < groups; ++g) {
          int64_t sum = 0;
          for (int64_t j = g * group; j < std::min(k, (g + 1) * group); ++j)
            sum += int64_t{qx[static_cast<size_t>(r * k + j)]} * qw[static_cast<size_t>(c * k + j)];
          total += double(sum) * xs[static_cast<size_t>(r * groups + g)];
        }
        y[static_cast<size_t>(r * n + c)] = static_cast<float>(total * ws[static_cast<size_t>(c)] +
                                                               (bias != nullptr ? bias[c] : 0.0));
      }
    }
    return y;
  });
}

// w8a8 on AMX tiles gives the AVX512-VNNI kernel's bits: both sum each group's int8
// products exactly in int32 and scale them alike. Every shape of the reference test (tails
// of rows, columns and k; partial groups), strided A and C, accumulate, and a bias.
TEST(Gemm, W8a8OnAmxTilesGivesTheVnniKernelsBits) {
  if (!cpu::cpu_has_amx_int8()) {
    EXPECT_FALSE(cpu::w8a8_uses_amx());
    GTEST_SKIP() << "this CPU (or its OS) has no AMX-INT8; w8a8 runs on AVX512-VNNI";
  }
  ASSERT_TRUE(cpu::w8a8_uses_amx());  // the default where the tiles are there
  const testing::AmxRestore restore;
  ThreadPool pool(2);
  const Shape3 shapes[] = {{1, 1, 1},      {1, 17, 5},    {2, 16, 300},   {5, 33, 7},
                           {6, 48, 257},   {7, 15, 64},   {13, 100, 33},  {64, 96, 600},
                           {100, 31, 513}, {33, 40, 896}, {160, 64, 256}, {70, 48, 130}};
  uint32_t seed = 900;
  for (const auto& s : shapes) {
    const int64_t lda = s.k + 3, ldc = s.n + 5;
    const auto x = random_vector(static_cast<size_t>(s.m * lda), seed++);
    const auto w = random_vector(static_cast<size_t>(s.n * s.k), seed++);
    const auto b = random_vector(static_cast<size_t>(s.n), seed++);
    const auto c0 = random_vector(static_cast<size_t>(s.m * ldc), seed++);
    const auto packed = pack(w, s.n, s.k, WeightFormat::W8A8);
    for (const bool accumulate : {false, true}) {
      cpu::set_amx(true);
      const auto amx = run_linear(pool, x, s.m, s.k, lda, packed, b.data(), ldc, c0, accumulate);
      cpu::set_amx(false);
      const auto vnni = run_linear(pool, x, s.m, s.k, lda, packed, b.data(), ldc, c0, accumulate);
      EXPECT_EQ(amx, vnni) << s.m << "x" << s.n << "x" << s.k << (accumulate ? " accumulate" : "");
    }
  }
}

// One scale a group, not a row: a row whose first group is 1000× its second keeps the
// second group's precision (with one scale a row, those values would round to 0 or ±1).
TEST(Gemm, W8a8GroupsKeepSmallValuesBesideAnOutlier) {
  if (!cpu::cpu_has_vnni()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  ThreadPool pool(1);
  const int64_t n = 16, k = 2 * cpu::kW8a8GroupK;
  auto x = random_vector(static_cast<size_t>(k), 5, 1e-3f);
  x[0] = 1.0f;  // the outlier, in the first group
  std::vector<float> w(static_cast<size_t>(n * k), 0.0f);
  for (int64_t c = 0; c < n; ++c)
    for (int64_t j = cpu::kW8a8GroupK; j < k; ++j)
      w[static_cast<size_t>(c * k + j)] = (c + j) % 3 == 0 ? 1.0f : -0.5f;  // second group only
  const auto expect = ref::linear(x, 1, k, w, n, nullptr);
  const auto got = run_linear(pool, x, 1, k, k, pack(w, n, k, WeightFormat::W8A8), nullptr, n,
                              std::vector<float>(size_t(n)), false);
  // The second group's values quantise with max 1e-3 → 127: about 0.4 % of each.
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 0.01 * max_abs(expect));
}

// Rows read through an implicit im2col (taps, as a convolution reads them) give exactly
// what the same rows laid out densely give: a row is quantised over all its taps.
TEST(Gemm, W8a8TapsEqualTheDenseRows) {
  if (!cpu::cpu_has_vnni()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  ThreadPool pool(2);
  const int64_t m = 9, n = 40, taps = 3, width = 70, tap_stride = 75, row_stride = 11;
  const int64_t k = taps * width;  // 210: a full group and a partial one
  const auto src = random_vector(static_cast<size_t>(m * row_stride + taps * tap_stride), 12);
  std::vector<float> dense(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = 0; c < width; ++c)
        dense[static_cast<size_t>(r * k + t * width + c)] =
            src[static_cast<size_t>(r * row_stride + t * tap_stride + c)];
  const auto w = random_vector(static_cast<size_t>(n * k), 13);
  const auto packed = pack(w, n, k, WeightFormat::W8A8);
  std::vector<float> got(static_cast<size_t>(m * n)), want(got.size());
  cpu::GemmProblem im2col{{src.data(), row_stride, taps, tap_stride, width}, m, got.data(), n};
  cpu::gemm(pool, {&im2col, 1}, packed, {});
  cpu::GemmProblem rows{{dense.data(), k, 1, 0, k}, m, want.data(), n};
  cpu::gemm(pool, {&rows, 1}, packed, {});
  EXPECT_EQ(got, want);
}

// A NaN or an infinity in a row reaches that row's outputs (as in float32), and only its.
TEST(Gemm, W8a8NonFiniteInputsReachTheirRowsOutputs) {
  if (!cpu::cpu_has_vnni()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  ThreadPool pool(1);
  const int64_t m = 3, n = 20, k = 300;
  const auto w = random_vector(static_cast<size_t>(n * k), 6);
  auto x = random_vector(static_cast<size_t>(m * k), 7);
  x[static_cast<size_t>(0 * k + 200)] = std::numeric_limits<float>::quiet_NaN();
  x[static_cast<size_t>(2 * k + 5)] = std::numeric_limits<float>::infinity();
  const auto got = run_linear(pool, x, m, k, k, pack(w, n, k, WeightFormat::W8A8), nullptr, n,
                              std::vector<float>(static_cast<size_t>(m * n)), false);
  for (int64_t c = 0; c < n; ++c) {
    EXPECT_TRUE(std::isnan(got[static_cast<size_t>(c)])) << c;
    EXPECT_TRUE(std::isfinite(got[static_cast<size_t>(n + c)])) << c;
    EXPECT_FALSE(std::isfinite(got[static_cast<size_t>(2 * n + c)])) << c;
  }
}

// A row of zeros has scale 0 and gives exactly the bias.
TEST(Gemm, W8a8ZeroRowGivesTheBias) {
  if (!cpu::cpu_has_vnni()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  ThreadPool pool(1);
  const int64_t n = 20, k = 9;
  const auto w = random_vector(static_cast<size_t>(n * k), 3);
  const auto b = random_vector(static_cast<size_t>(n), 4);
  const auto got = run_linear(pool, std::vector<float>(size_t(k), 0.0f), 1, k, k,
                              pack(w, n, k, WeightFormat::W8A8), b.data(), n,
                              std::vector<float>(size_t(n)), false);
  EXPECT_EQ(got, b);
}

TEST(Gemm, RejectsMismatchedK) {
  ThreadPool pool(1);
  const auto w = random_vector(size_t{16} * 8, 1);
  const auto pw = pack(w, 16, 8, WeightFormat::F32);
  std::vector<float> x(9), c(16);
  cpu::GemmProblem p{{x.data(), 9, 1, 0, 9}, 1, c.data(), 16};
  EXPECT_THROW(cpu::gemm(pool, {&p, 1}, pw, {}), std::exception);
}

TEST(Backend, LinearThroughTheInterface) {
  auto backend = cpu::create_cpu_backend(2);
  auto stream = backend->create_stream();
  const int64_t m = 3, n = 5, k = 4;
  const auto x = random_vector(size_t(m * k), 1), w = random_vector(size_t(n * k), 2);
  auto pw = backend->prepare_linear(w.data(), n, k, WeightFormat::F32);
  EXPECT_EQ(pw->out_features(), n);
  EXPECT_EQ(pw->in_features(), k);
  std::vector<float> y(static_cast<size_t>(m * n));
  Segment seg{x.data(), m, y.data()};
  backend->primitives().linear(*stream, {&seg, 1}, {pw.get(), nullptr, false});
  const auto expect = ref::linear(x, m, k, w, n, nullptr);
  EXPECT_LT(max_abs_diff(y.data(), expect.data(), y.size()), 1e-5);
  EXPECT_EQ(backend->info().interface_version, kBackendInterfaceVersion);
  EXPECT_TRUE(backend->supports(Op::Conv1d, DType::F32));
  EXPECT_FALSE(backend->supports(Op::Conv1d, DType::F16));
  // A graph replays what was recorded.
  std::vector<float> y2(static_cast<size_t>(m * n));
  Segment seg2{x.data(), m, y2.data()};
  auto graph = backend->capture(*stream, [&](Stream& s) {
    backend->primitives().linear(s, {&seg2, 1}, {pw.get(), nullptr, false});
  });
  graph->launch(*stream);
  EXPECT_EQ(y2, y);
}

}  // namespace
}  // namespace cosy
