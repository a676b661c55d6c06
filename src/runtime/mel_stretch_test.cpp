#include "runtime/mel_stretch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"

namespace cosy {
namespace {

// F.interpolate(x, size=int(T / speed), mode="linear", align_corners=False), written out
// per PyTorch's definition, in double.
std::vector<float> reference(const std::vector<float>& in, int64_t bins, double speed) {
  const int64_t t = static_cast<int64_t>(in.size()) / bins;
  const auto n = static_cast<int64_t>(static_cast<double>(t) / speed);
  const double scale = static_cast<double>(t) / static_cast<double>(n);
  std::vector<float> out;
  for (int64_t j = 0; j < n; ++j) {
    double x = (j + 0.5) * scale - 0.5;
    if (x < 0) x = 0;
    const auto i0 = static_cast<int64_t>(x);
    const int64_t i1 = std::min(i0 + 1, t - 1);
    const double l1 = x - i0;
    for (int64_t k = 0; k < bins; ++k) {
      out.push_back(static_cast<float>((1 - l1) * in[i0 * bins + k] + l1 * in[i1 * bins + k]));
    }
  }
  return out;
}

std::vector<float> random_mel(int64_t frames, int64_t bins) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(-5.0f, 2.0f);
  std::vector<float> v(static_cast<size_t>(frames * bins));
  for (float& x : v) x = d(rng);
  return v;
}

TEST(MelStretch, AWholeSegmentIsTheOfficialInterpolation) {
  const int64_t bins = 4;
  for (int64_t frames : {1, 2, 7, 50, 123}) {
    const std::vector<float> mel = random_mel(frames, bins);
    for (double speed : {0.5, 0.8, 1.0, 1.3, 2.0}) {
      const std::vector<float> got = MelStretch::whole(mel, bins, speed);
      const std::vector<float> want = reference(mel, bins, speed);
      ASSERT_EQ(got.size(), want.size()) << frames << " " << speed;
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5) << frames << " " << speed;
    }
  }
}

TEST(MelStretch, AStreamGivesTheSameFramesHoweverItIsChunked) {
  const int64_t bins = 3;
  const int64_t frames = 97;
  const std::vector<float> mel = random_mel(frames, bins);
  for (double speed : {0.5, 0.75, 1.5, 2.0}) {
    std::vector<float> at_once;
    MelStretch a(speed, bins);
    a.push(mel, at_once);
    a.finish(at_once);
    EXPECT_EQ(static_cast<int64_t>(at_once.size()) / bins, static_cast<int64_t>(frames / speed))
        << speed;
    for (int64_t chunk : {1, 2, 5, 13}) {
      std::vector<float> pieces;
      MelStretch b(speed, bins);
      for (int64_t f = 0; f < frames; f += chunk) {
        const int64_t n = std::min(chunk, frames - f);
        b.push(std::span<const float>(mel).subspan(static_cast<size_t>(f * bins),
                                                   static_cast<size_t>(n * bins)),
               pieces);
      }
      b.finish(pieces);
      EXPECT_EQ(pieces, at_once) << speed << " chunk " << chunk;
    }
    // Streaming uses scale = speed, the whole segment T / int(T / speed): close, not equal.
    const std::vector<float> whole = MelStretch::whole(mel, bins, speed);
    ASSERT_EQ(whole.size(), at_once.size());
  }
}

TEST(MelStretch, RefusesSpeedsOutsideTheRange) {
  EXPECT_THROW(MelStretch(0.4, 80), Error);
  EXPECT_THROW(MelStretch(2.5, 80), Error);
  EXPECT_THROW(MelStretch::whole(random_mel(4, 2), 2, 3.0), Error);
}

}  // namespace
}  // namespace cosy
