#include "tools/loadtest/load_report.h"

#include <gtest/gtest.h>

namespace cosy::loadtest {
namespace {

TEST(LoadReport, PercentilesAreNumpysLinearOnes) {
  // numpy.percentile([4, 1, 3, 2], [50, 90, 99]) = 2.5, 3.7, 3.97
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 3.97, 1e-12);
  EXPECT_EQ(percentile({}, 50), 0);
  EXPECT_EQ(percentile({5}, 99), 5);
}

StreamRecord record(int64_t id, double sent, std::vector<Arrival> a, bool ok = true) {
  StreamRecord r;
  r.id = id;
  r.sent_s = sent;
  r.ended_s = a.empty() ? 0 : a.back().at_s;
  r.arrivals = std::move(a);
  r.ok = ok;
  if (!ok) r.error = "boom";
  return r;
}

// Warm-up streams are not measured but their audio in the window counts; the window
// bounds the audio; failures are counted with their error.
TEST(LoadReport, TheWindowTheWarmUpAndFailures) {
  const std::vector<StreamRecord> records = {
      record(0, 0, {{0.5, 1}, {1.0, 1}}),    // warm-up: audio at 0.5 and 1.0
      record(1, 1.0, {{0.5, 1}, {2.0, 1}}),  // at 1.5, 3.0: one stall of 0.5 s
      record(2, 1.0, {{0.25, 2}}),           // at 1.25
      record(3, 2.0, {}, false),
  };
  const LevelReport r = summarize("closed", 2, 0, records, 1, 1.0, 3.0, 0);
  EXPECT_EQ(r.requests, 3);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.errors, std::vector<std::string>{"boom"});
  EXPECT_DOUBLE_EQ(r.window_s, 2.0);
  EXPECT_DOUBLE_EQ(r.audio_in_window_s, 1 + 1 + 1 + 2);  // 1.0, 1.5, 3.0 and 1.25
  EXPECT_DOUBLE_EQ(r.xrt, 2.5);
  EXPECT_EQ(r.stalls, 1);
  EXPECT_DOUBLE_EQ(r.no_stall_share, 0.5);
  EXPECT_DOUBLE_EQ(r.first_audio_s.p50, 0.375);
  EXPECT_DOUBLE_EQ(r.mean_audio_s, 2);
  // Round trip through the sweep JSON.
  const LevelReport back = level_from_json(to_json(r, true));
  EXPECT_DOUBLE_EQ(back.xrt, r.xrt);
  EXPECT_DOUBLE_EQ(back.first_audio_s.p99, r.first_audio_s.p99);
  EXPECT_EQ(back.concurrency, 2);
  nlohmann::json broken = to_json(r, false);
  broken.erase("xrt");
  EXPECT_THROW(level_from_json(broken), Error);
}

}  // namespace
}  // namespace cosy::loadtest
