// interpolate_linear against torch's rounding of F.interpolate(mode="linear").
#include "model/hift/hift_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace cosy {
namespace {

// Upsampling by 480 as SineGen2 does: each weight must carry float32 precision of its own.
// torch computes the source index in float64 from its float32 scale; a float32 index
// would quantise the weights to the index's ulp (2e-6 near index 24), and the phases
// (thousands of radians) with them.
TEST(InterpolateLinear, WeightsKeepTheirOwnPrecisionFarFromIndexZero) {
  const int64_t n_in = 26, up = 480;
  std::vector<float> in(static_cast<size_t>(n_in), 0.0f);
  in[25] = 1.0f;  // between inputs 24 and 25 the output is exactly the weight of input 25
  const auto out = interpolate_linear(in, n_in * up, static_cast<double>(up));
  const auto scale = static_cast<float>(1.0 / up);
  int checked = 0;
  double worst = 0;
  for (int64_t j = 0; j < n_in * up; ++j) {
    const long double src = static_cast<long double>(scale) * (j + 0.5L) - 0.5L;
    if (src < 24.0L || src >= 25.0L) continue;
    const long double weight = src - 24.0L;
    worst = std::max(worst, static_cast<double>(std::fabs(out[size_t(j)] - weight)));
    ++checked;
  }
  EXPECT_EQ(checked, up);
  EXPECT_LT(worst, 1e-7);  // half a float32 ulp of the weight; a float32 index gives ~1e-6
}

TEST(InterpolateLinear, DownsamplingAveragesTheTwoMiddleSamples) {
  std::vector<float> in(960);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  const auto out = interpolate_linear(in, 2, 1.0 / 480.0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], 239.5f);  // index 480 * 0.5 - 0.5: samples 239 and 240
  EXPECT_EQ(out[1], 719.5f);
}

TEST(InterpolateLinear, ClampsAtBothEnds) {
  const std::vector<float> in = {2.0f, 4.0f};
  const auto out = interpolate_linear(in, 8, 4.0);
  EXPECT_EQ(out.front(), 2.0f);  // source index below 0 is clamped to 0
  EXPECT_EQ(out.back(), 4.0f);   // past the last input the second tap repeats it
}

}  // namespace
}  // namespace cosy
