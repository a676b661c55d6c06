#include "kernels/gemm_kernel.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/gemm_tuner.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::random_vector;

// Bit-identical, not close: the kernels promise the same operations in the same order.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Case {
  int64_t m, n, taps, tap_width, row_stride, tap_stride;
  bool bias, accumulate;
};

std::vector<float> run(ThreadPool& pool, const Case& s, cpu::GemmKernel kernel, uint32_t seed,
                       WeightFormat format = WeightFormat::F32) {
  const int64_t k = s.taps * s.tap_width;
  const int64_t a_size = (s.m - 1) * s.row_stride + (s.taps - 1) * s.tap_stride + s.tap_width;
  const auto a = random_vector(static_cast<size_t>(a_size), seed);
  const auto w = random_vector(static_cast<size_t>(s.n * k), seed + 1);
  const auto bias = random_vector(static_cast<size_t>(s.n), seed + 2);
  auto c = random_vector(static_cast<size_t>(s.m * (s.n + 3)), seed + 3);  // ldc = n + 3
  const cpu::PackedWeight pw(
      s.n, k, format, [&](int64_t r, int64_t col) { return w[static_cast<size_t>(r * k + col)]; });
  const cpu::GemmProblem p{
      {a.data(), s.row_stride, s.taps, s.tap_stride, s.tap_width}, s.m, c.data(), s.n + 3};
  cpu::gemm_with_kernel(pool, {&p, 1}, pw, {s.bias ? bias.data() : nullptr, s.accumulate}, kernel);
  return c;
}

TEST(GemmKernel, EveryKernelIsBitIdenticalToTheDefaultOnEveryShape) {
  if (!cpu::cpu_has_avx512f()) GTEST_SKIP() << "this CPU has no AVX512F: only avx2 runs";
  ThreadPool pool(2);
  // Rows past the streaming bound (24) and across task chunks (96); N off the 16-column
  // panels and the tiles' 2–4 panel groups; K across 256-value blocks; convolution
  // geometry (taps over a strided, dilated input); bias and accumulate.
  const Case cases[] = {
      {25, 16, 1, 64, 64, 0, false, false},      {37, 40, 1, 300, 300, 0, true, false},
      {96, 17, 1, 600, 610, 0, true, true},      {97, 200, 1, 257, 257, 0, false, true},
      {200, 896, 1, 896, 896, 0, true, false},   {130, 64, 11, 64, 64, 5 * 64, true, false},
      {301, 256, 3, 256, 512, 256, false, true}, {50, 80, 7, 80, 80, 240, true, true},
      {64, 48, 1, 4864, 4864, 0, true, false},
  };
  uint32_t seed = 10;
  for (const Case& s : cases) {
    const auto expected = run(pool, s, cpu::GemmKernel::Avx2, seed);
    for (const cpu::GemmKernel kernel :
         cpu::gemm_kernels_for(WeightFormat::F32, cpu::GemmRows::Many)) {
      EXPECT_TRUE(same_bits(run(pool, s, kernel, seed), expected))
          << cpu::gemm_kernel_name(kernel) << " M=" << s.m << " N=" << s.n << " K=" << s.taps << "x"
          << s.tap_width;
    }
    seed += 7;
  }
}

TEST(GemmKernel, TheStreamingKernelIsBitIdenticalForDecodeInEveryFormatItRuns) {
  if (!cpu::cpu_has_avx512f()) GTEST_SKIP() << "this CPU has no AVX512F: only avx2 runs";
  ThreadPool pool(2);
  // 1..24 rows (one row's four k chains, the tiles of 2..6 and their splits), N off the
  // panels, K across blocks and off the chains' 4, taps, bias and accumulate.
  const Case cases[] = {
      {1, 896, 1, 896, 896, 0, false, false},  {1, 40, 1, 301, 301, 0, true, false},
      {2, 17, 1, 257, 260, 0, true, true},     {3, 64, 1, 64, 64, 0, false, false},
      {4, 200, 1, 600, 600, 0, true, false},   {5, 33, 3, 80, 80, 160, true, true},
      {7, 48, 1, 513, 513, 0, false, true},    {13, 100, 1, 128, 128, 0, true, false},
      {24, 96, 1, 4864, 4864, 0, true, false}, {16, 130, 1, 1000, 1000, 0, false, false},
  };
  uint32_t seed = 40;
  for (const WeightFormat f : {WeightFormat::F32, WeightFormat::F16, WeightFormat::I8}) {
    ASSERT_EQ(cpu::gemm_kernels_for(f, cpu::GemmRows::Few),
              (std::vector<cpu::GemmKernel>{cpu::GemmKernel::Avx2, cpu::GemmKernel::Avx512Stream}));
    for (const Case& s : cases) {
      const auto expected = run(pool, s, cpu::GemmKernel::Avx2, seed, f);
      EXPECT_TRUE(same_bits(run(pool, s, cpu::GemmKernel::Avx512Stream, seed, f), expected))
          << weight_format_name(f) << " M=" << s.m << " N=" << s.n << " K=" << s.taps << "x"
          << s.tap_width;
      seed += 5;
    }
  }
  // A kernel for another format is refused, not run.
  const Case one{30, 16, 1, 64, 64, 0, false, false};
  EXPECT_THROW(run(pool, one, cpu::GemmKernel::Avx512Rows6Panels4, 1, WeightFormat::I8), Error);
  EXPECT_THROW(run(pool, one, cpu::GemmKernel::Avx512Rows8Panels3, 1, WeightFormat::F16), Error);
}

TEST(GemmKernel, NamesRoundTripAndUnknownNamesAreRefused) {
  for (const cpu::GemmKernel k : cpu::gemm_kernels_on_this_cpu()) {
    EXPECT_EQ(cpu::parse_gemm_kernel(cpu::gemm_kernel_name(k)), k);
  }
  EXPECT_FALSE(cpu::parse_gemm_kernel("avx512-99x99").has_value());
  EXPECT_EQ(cpu::gemm_kernels_on_this_cpu().front(), cpu::GemmKernel::Avx2);
}

TEST(GemmKernel, InstalledChoicesRouteTheirShapesAndOnlyThose) {
  if (!cpu::cpu_has_avx512f()) GTEST_SKIP() << "this CPU has no AVX512F";
  if (std::getenv("COSY_GEMM_KERNEL") != nullptr) GTEST_SKIP() << "COSY_GEMM_KERNEL forces one";
  auto choices = std::make_shared<cpu::GemmKernelChoices>();
  const cpu::GemmShape tuned{256, 3, 256}, other{256, 1, 768};
  choices->set(tuned, cpu::GemmKernel::Avx512Rows8Panels3);
  cpu::install_gemm_kernel_choices(choices);
  EXPECT_EQ(cpu::gemm_kernel_for(tuned), cpu::GemmKernel::Avx512Rows8Panels3);
  EXPECT_EQ(cpu::gemm_kernel_for(other), cpu::GemmKernel::Avx2);
  cpu::install_gemm_kernel_choices(nullptr);
  EXPECT_EQ(cpu::gemm_kernel_for(tuned), cpu::GemmKernel::Avx2);
}

TEST(GemmKernel, TheRecorderSeesTheModelsShapesWithTheirGeometry) {
  ThreadPool pool(2);
  const cpu::PackedWeight pw(32, 3 * 20, WeightFormat::F32, [](int64_t, int64_t) { return 0.5f; });
  std::vector<float> a(1000, 1.0f), c(40 * 32);
  const cpu::GemmProblem conv{{a.data(), 20, 3, 40, 20}, 40, c.data(), 32};
  const cpu::GemmProblem few{{a.data(), 20, 3, 40, 20}, 4, c.data(), 32};  // decode: not tuned
  const cpu::PackedWeight int8(48, 60, WeightFormat::I8, [](int64_t, int64_t) { return 0.5f; });
  std::vector<float> c8(40 * 48);
  const cpu::GemmProblem decode{{a.data(), 60, 1, 0, 60}, 4, c8.data(), 48};
  const cpu::GemmProblem prefill{{a.data(), 0, 1, 0, 60}, 40, c8.data(), 48};
  std::map<cpu::GemmShape, cpu::RecordedGemm> seen;
  {
    cpu::GemmShapeRecorder recorder;
    EXPECT_THROW(cpu::GemmShapeRecorder second, Error);
    // float32: both calls, each in its regime; int8: the decode call only (its prefill has
    // no kernel to choose).
    cpu::gemm(pool, {&few, 1}, pw, {});
    cpu::gemm(pool, {&conv, 1}, pw, {});
    cpu::gemm(pool, {&decode, 1}, int8, {});
    cpu::gemm(pool, {&prefill, 1}, int8, {});
    seen = recorder.shapes();
  }
  ASSERT_EQ(seen.size(), 3u);  // float32 in both regimes, int8 decode
  const cpu::RecordedGemm& rec = seen.at(cpu::GemmShape{32, 3, 20, WeightFormat::F32});
  EXPECT_EQ(rec.rows, 40);
  EXPECT_EQ(rec.row_stride, 20);
  EXPECT_EQ(rec.tap_stride, 40);
  EXPECT_EQ(seen.at(cpu::GemmShape{32, 3, 20, WeightFormat::F32, cpu::GemmRows::Few}).rows, 4);
  EXPECT_EQ(seen.at(cpu::GemmShape{48, 1, 60, WeightFormat::I8, cpu::GemmRows::Few}).rows, 4);
}

TEST(GemmTuner, TimesEveryKernelAndPicksOneThatIsFaster) {
  ThreadPool pool(2);
  cpu::GemmTuneOptions o;
  o.seconds_per_kernel = 0.01;
  const auto t = cpu::tune_gemm(pool, {96, 3, 64}, {120, 64, 64}, o);
  EXPECT_EQ(t.rows, 120);
  EXPECT_EQ(t.seconds.size(), cpu::gemm_kernels_for(WeightFormat::F32, cpu::GemmRows::Many).size());
  const double base = t.seconds.at(cpu::GemmKernel::Avx2);
  if (t.kernel != cpu::GemmKernel::Avx2) {
    EXPECT_LE(t.seconds.at(t.kernel), base * (1 - o.min_gain));
  }
  // No kernel can clear an impossible margin: the default stays.
  o.min_gain = 1.0;
  EXPECT_EQ(cpu::tune_gemm(pool, {96, 3, 64}, {120, 64, 64}, o).kernel, cpu::GemmKernel::Avx2);
}

// A decode shape is recorded while one stream runs, and runs at any batch up to
// kGemmStreamRows: it is timed at 1, 4, the batch limit and its own count.
TEST(GemmTuner, DecodeShapesAreTimedAtOneStreamAndAFullBatch) {
  const int64_t full = cpu::kGemmStreamRows;
  EXPECT_EQ(cpu::timed_row_counts(1), (std::vector<int64_t>{1, 4, full}));
  EXPECT_EQ(cpu::timed_row_counts(7), (std::vector<int64_t>{1, 4, 7, full}));
  EXPECT_EQ(cpu::timed_row_counts(full), (std::vector<int64_t>{1, 4, full}));
  EXPECT_EQ(cpu::timed_row_counts(full + 1), (std::vector<int64_t>{full + 1}));

  ThreadPool pool(2);
  cpu::GemmTuneOptions o;
  o.seconds_per_kernel = 0.01;
  const cpu::GemmShape decode{64, 1, 96, WeightFormat::I8, cpu::GemmRows::Few};
  const auto t = cpu::tune_gemm(pool, decode, {1, 96, 0}, o);
  EXPECT_EQ(t.rows, full);  // the largest count timed: the entry stays a few-row one
  EXPECT_EQ(t.seconds.size(), cpu::gemm_kernels_for(WeightFormat::I8, cpu::GemmRows::Few).size());
}

}  // namespace
}  // namespace cosy
