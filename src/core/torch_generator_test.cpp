#include "core/torch_generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace cosy {
namespace {

TEST(TorchGenerator, RawStreamIsMt19937) {
  // std::mt19937 seeds and tempers exactly as torch's generator: an independent reference.
  for (uint32_t seed : {0u, 5u, 100u, 0xdeadbeefu}) {
    std::mt19937 reference(seed);
    TorchGenerator g(seed);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(g.next_u32(), reference()) << seed << " " << i;
  }
}

TEST(TorchGenerator, ManualSeedUsesTheLow32BitsAndRestarts) {
  TorchGenerator a((1ull << 32) + 7);
  TorchGenerator b(7);
  EXPECT_EQ(a.next_u32(), b.next_u32());
  b.manual_seed(7);
  a.manual_seed(7);
  EXPECT_EQ(a.next_u32(), b.next_u32());
}

TEST(TorchGenerator, RandUses24BitUniforms) {
  TorchGenerator g(1);
  std::mt19937 reference(1);
  std::vector<float> u(1000);
  g.rand(u);
  for (float v : u) {
    EXPECT_EQ(v, static_cast<float>(reference() & 0xffffff) / 16777216.0F);
    EXPECT_GE(v, 0.0F);
    EXPECT_LT(v, 1.0F);
  }
}

TEST(TorchGenerator, RandnIsBoxMullerInBlocksOf16) {
  TorchGenerator g(3);
  std::vector<float> x(16);
  g.randn(x);
  // Recompute the block from the same uniforms.
  std::mt19937 again(3);
  float u[16];
  for (float& v : u) v = static_cast<float>(again() & 0xffffff) / 16777216.0F;
  for (int j = 0; j < 8; ++j) {
    const double r = std::sqrt(-2.0 * std::log(1.0 - u[j]));
    // float32 polynomials (as torch's AVX2 build) against the exact formula in double;
    // bit-exactness against torch itself is checked by tests/golden_rng_test.cpp.
    EXPECT_NEAR(x[j], r * std::cos(2 * M_PI * u[j + 8]), 2e-6);
    EXPECT_NEAR(x[j + 8], r * std::sin(2 * M_PI * u[j + 8]), 2e-6);
  }
}

TEST(TorchGenerator, RandnTailRedrawsTheLastBlock) {
  // 20 elements: one block of 16, then the last 16 are redrawn from 16 new uniforms.
  TorchGenerator g(9);
  std::vector<float> x(20);
  g.randn(x);
  TorchGenerator h(9);
  std::vector<float> first(16);
  h.randn(first);  // consumes the first 16 uniforms identically...
  std::vector<float> skip(4);
  h.rand(skip);  // ...then the 4 that the tail's first pass drew...
  std::vector<float> tail(16);
  h.randn(tail);  // ...then the 16 redrawn ones.
  for (int i = 0; i < 16; ++i) EXPECT_EQ(x[4 + i], tail[i]) << i;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(x[i], first[i]) << i;
}

TEST(TorchGenerator, MomentsAreStandardNormal) {
  TorchGenerator g(11);
  std::vector<float> x(1 << 16);
  g.randn(x);
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= x.size();
  for (float v : x) var += (v - mean) * (v - mean);
  var /= x.size();
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.02);
}

// torch's serial path: 53-bit uniforms from two 32-bit draws, Box-Muller in double, the
// second value cached in the generator for the next draw.
TEST(TorchGenerator, SmallRandnUsesTheSerialPathAndItsCache) {
  TorchGenerator g(21);
  std::vector<float> x(3);
  g.randn(x);
  std::mt19937 ref(21);
  auto uniform = [&] {
    const uint64_t hi = ref(), lo = ref();
    return static_cast<double>(((hi << 32) | lo) & ((1ull << 53) - 1)) * 0x1p-53;
  };
  double u1 = uniform(), u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(1.0 - u2));
  EXPECT_EQ(x[0], static_cast<float>(r * std::cos(2 * M_PI * u1)));
  EXPECT_EQ(x[1], static_cast<float>(r * std::sin(2 * M_PI * u1)));  // the cached value
  u1 = uniform();
  u2 = uniform();
  r = std::sqrt(-2.0 * std::log(1.0 - u2));
  EXPECT_EQ(x[2], static_cast<float>(r * std::cos(2 * M_PI * u1)));
  // The cache outlives the call and manual_seed clears it.
  std::vector<float> next(1);
  g.normal_serial(next);
  EXPECT_EQ(next[0], static_cast<float>(r * std::sin(2 * M_PI * u1)));
  g.manual_seed(21);
  g.normal_serial(next);
  EXPECT_EQ(next[0], x[0]);
}

}  // namespace
}  // namespace cosy
