#include "server/recent_activity.h"

#include <gtest/gtest.h>

namespace cosy::server {
namespace {

Clock::time_point at(Clock::time_point start, double s) { return start + seconds(s); }

TEST(RecentActivity, XrtIsAudioPerWallSecondOverTheLastMinute) {
  const Clock::time_point t0 = Clock::now();
  RecentActivity a(t0);
  EXPECT_EQ(a.summary(t0).xrt, 0);
  // 10 s in: 25 s of audio so far, 2.5x real time over the 10 s there has been.
  for (int i = 0; i < 50; ++i) a.audio(0.5, at(t0, 0.2 * i));
  auto s = a.summary(at(t0, 10));
  EXPECT_NEAR(s.window_s, 10, 1e-9);
  EXPECT_NEAR(s.audio_s, 25, 1e-9);
  EXPECT_NEAR(s.xrt, 2.5, 1e-9);
  // Two minutes later nothing of it is left.
  s = a.summary(at(t0, 130));
  EXPECT_NEAR(s.window_s, 60, 1e-9);
  EXPECT_EQ(s.audio_s, 0);
  // A steady 3 s of audio per second for 90 s: xRT 3 over the minute, with no jump as the
  // oldest second ages out part way.
  for (int i = 0; i < 900; ++i) {
    const double t = 200 + 0.1 * i;
    a.audio(0.3, at(t0, t));
    if (t > 262) {
      EXPECT_NEAR(a.summary(at(t0, t + 0.05)).xrt, 3.0, 0.02) << t;
    }
  }
}

TEST(RecentActivity, TimeToFirstAudioPercentilesCoverOnlyTheWindow) {
  const Clock::time_point t0 = Clock::now();
  RecentActivity a(t0);
  EXPECT_EQ(a.summary(t0).ttfa_p99_s, -1);
  a.first_audio(9.0, at(t0, 1));  // old: gone a minute later
  for (int i = 1; i <= 100; ++i) a.first_audio(0.01 * i, at(t0, 70 + 0.01 * i));
  const auto s = a.summary(at(t0, 72));
  EXPECT_EQ(s.first_audios, 100);
  EXPECT_NEAR(s.ttfa_p50_s, 0.50, 1e-9);
  EXPECT_NEAR(s.ttfa_p99_s, 0.99, 1e-9);
  EXPECT_EQ(a.summary(at(t0, 200)).first_audios, 0);
}

}  // namespace
}  // namespace cosy::server
