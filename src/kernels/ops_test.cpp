#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/cpu_backend.h"
#include "kernels/norm.h"
#include "kernels/reference.h"
#include "kernels/stft.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::max_abs_diff;
using testing::random_vector;

TEST(Activation, EveryKindMatchesReference) {
  const int64_t n = 203;  // a vector body and a scalar tail
  auto x = random_vector(size_t(n), 3, 6.0f);
  x[0] = 0.0f;
  std::vector<float> alpha(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) alpha[size_t(i)] = 0.1f + 0.02f * static_cast<float>(i);
  for (auto kind :
       {ActivationKind::LeakyRelu, ActivationKind::Elu, ActivationKind::Snake, ActivationKind::Silu,
        ActivationKind::GeluTanh, ActivationKind::GeluErf, ActivationKind::Tanh,
        ActivationKind::Mish, ActivationKind::Abs, ActivationKind::Clamp}) {
    const Activation act{kind, 0.1f, alpha.data(), 2.5f};
    std::vector<float> got(static_cast<size_t>(n));
    cpu::activate_row(act, x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float expect = ref::activation(act, x[size_t(i)], i);
      EXPECT_NEAR(got[size_t(i)], expect, 1e-6 + 1e-6 * std::fabs(expect))
          << int(kind) << " at " << x[size_t(i)];
    }
  }
}

TEST(Activation, GatedSiluIsSiluOfGateTimesUp) {
  const int64_t rows = 3, ch = 37;  // vector body plus tail per row
  const auto x = random_vector(size_t(rows * 2 * ch), 4, 5.0f);
  auto backend = cpu::create_cpu_backend(2);
  auto stream = backend->create_stream();
  std::vector<float> y(size_t(rows * ch));
  const Activation silu{ActivationKind::Silu};
  backend->primitives().gated_activation(*stream, x.data(), y.data(), rows, ch, silu);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < ch; ++c) {
      const float g = x[size_t(r * 2 * ch + c)], u = x[size_t(r * 2 * ch + ch + c)];
      const float expect = ref::activation(silu, g, c) * u;
      EXPECT_NEAR(y[size_t(r * ch + c)], expect, 1e-5 + 1e-6 * std::fabs(expect));
    }
  }
}

TEST(Norm, RmsAndLayerNormMatchReference) {
  ThreadPool pool(2);
  const int64_t rows = 9, dim = 67;
  const auto x = random_vector(size_t(rows * dim), 1, 3.0f);
  const auto w = random_vector(size_t(dim), 2), b = random_vector(size_t(dim), 3);
  std::vector<float> got(x.size()), expect(x.size());
  cpu::rms_norm(pool, x.data(), got.data(), rows, dim, w.data(), 1e-6f);
  ref::rms_norm(x.data(), expect.data(), rows, dim, w.data(), 1e-6f);
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 1e-5);
  cpu::layer_norm(pool, x.data(), got.data(), rows, dim, w.data(), b.data(), 1e-5f);
  ref::layer_norm(x.data(), expect.data(), rows, dim, w.data(), b.data(), 1e-5f);
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 1e-5);
}

TEST(Softmax, PlainAndLogMatchReference) {
  ThreadPool pool(2);
  for (bool log : {false, true}) {
    auto got = random_vector(size_t{5} * 6564, 4, 20.0f);
    auto expect = got;
    cpu::softmax(pool, got.data(), 5, 6564, log);
    ref::softmax(expect.data(), 5, 6564, log);
    EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), log ? 1e-4 : 1e-6);
  }
}

TEST(Rope, MatchesReferenceAtLargePositions) {
  ThreadPool pool(2);
  const int64_t rows = 6, heads = 3, hd = 64, ld = heads * hd + 5;
  auto got = random_vector(size_t(rows * ld), 5);
  auto expect = got;
  const std::vector<int32_t> pos = {0, 1, 7, 100, 1000, 4095};
  cpu::rope(pool, got.data(), rows, heads, hd, ld, pos.data(), 1000000.0f);
  ref::rope(expect.data(), rows, heads, hd, ld, pos.data(), 1000000.0f);
  // float32 angles, as torch computes them, differ from exact ones by ~pos * 1e-7.
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 2e-3);
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), size_t(4 * ld)), 1e-5);
}

// x-transformers' pairs (2i, 2i+1), as CosyVoice3's DiT rotates them.
TEST(Rope, AdjacentPairsMatchReferenceAndDifferFromHalves) {
  ThreadPool pool(2);
  const int64_t rows = 5, heads = 2, hd = 16, ld = heads * hd + 3;
  auto got = random_vector(size_t(rows * ld), 7);
  auto expect = got, halves = got;
  const std::vector<int32_t> pos = {0, 1, 2, 50, 113};
  cpu::rope(pool, got.data(), rows, heads, hd, ld, pos.data(), 10000.0f, RopePairs::Adjacent);
  ref::rope(expect.data(), rows, heads, hd, ld, pos.data(), 10000.0f, RopePairs::Adjacent);
  cpu::rope(pool, halves.data(), rows, heads, hd, ld, pos.data(), 10000.0f, RopePairs::Halves);
  EXPECT_LT(max_abs_diff(got.data(), expect.data(), got.size()), 1e-4);
  EXPECT_GT(max_abs_diff(got.data(), halves.data(), got.size()), 1e-2);
  // Position 0 is the identity, and channel 2i pairs with 2i+1: (a, b) -> (a cos - b sin, ...).
  const auto x0 = random_vector(size_t(rows * ld), 7);
  EXPECT_EQ(got[0], x0[0]);
  const float c = std::cos(1.0f), s = std::sin(1.0f);
  EXPECT_NEAR(got[size_t(ld)], x0[size_t(ld)] * c - x0[size_t(ld) + 1] * s, 1e-6);
}

TEST(Stft, MatchesReferenceAndInverts) {
  ThreadPool pool(2);
  const int64_t n = int64_t{480} * 3, n_fft = 16, hop = 4, bins = 9;
  const auto x = random_vector(size_t(n), 6);
  const int64_t frames = cpu::stft_frames(n, hop);
  ASSERT_EQ(frames, 361);
  std::vector<float> re(size_t(frames * bins)), im(re.size()), re2(re.size()), im2(re.size());
  cpu::stft(pool, x.data(), n, n_fft, hop, re.data(), im.data());
  ref::stft(x.data(), n, n_fft, hop, re2.data(), im2.data());
  EXPECT_LT(max_abs_diff(re.data(), re2.data(), re.size()), 1e-5);
  EXPECT_LT(max_abs_diff(im.data(), im2.data(), im.size()), 1e-5);
  // A random spectrum (not the image of any signal) through both inverses.
  auto rr = random_vector(re.size(), 7), ri = random_vector(re.size(), 8);
  std::vector<float> y(size_t(hop * (frames - 1))), y2(y.size());
  cpu::istft(pool, rr.data(), ri.data(), frames, n_fft, hop, y.data());
  ref::istft(rr.data(), ri.data(), frames, n_fft, hop, y2.data());
  EXPECT_LT(max_abs_diff(y.data(), y2.data(), y.size()), 1e-5);
  // And stft → istft gives the signal back.
  cpu::istft(pool, re.data(), im.data(), frames, n_fft, hop, y.data());
  EXPECT_LT(max_abs_diff(y.data(), x.data(), y.size()), 1e-5);
}

TEST(Stft, RejectsTooShortInput) {
  ThreadPool pool(1);
  std::vector<float> x(4), re(100), im(100);
  EXPECT_THROW(cpu::stft(pool, x.data(), 4, 16, 4, re.data(), im.data()), std::exception);
}

}  // namespace
}  // namespace cosy
