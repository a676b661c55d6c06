// The driver against a target that answers from a script (no model): the workload is
// fixed by the seed, warm-up requests are not measured, the closed loop keeps its
// concurrency, the open loop sends at its rate, and a failing target is reported.
#include "tools/loadtest/load_driver.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

namespace cosy::loadtest {
namespace {

// Each request: 20 ms, then 1 s of audio in two chunks. Records the most requests it saw at
// once, and fails the requests whose text is "fail".
class ScriptedTarget : public LoadTarget {
 public:
  std::string describe() const override { return "scripted"; }
  StreamRecord run(const LoadRequest& r, Clock::time_point sent,
                   const std::atomic<bool>&) override {
    {
      std::lock_guard lock(mutex_);
      peak_ = std::max(peak_, ++running_);
      seen_.push_back(r);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    StreamRecord rec;
    rec.id = r.id;
    rec.ok = r.text != "fail";
    if (rec.ok) {
      rec.arrivals = {{seconds_from(sent), 0.5}, {seconds_from(sent), 0.5}};
    } else {
      rec.error = "scripted failure";
    }
    rec.ended_s = seconds_from(sent);
    std::lock_guard lock(mutex_);
    --running_;
    return rec;
  }
  int peak() const { return peak_; }
  std::vector<LoadRequest> seen() const { return seen_; }

 private:
  mutable std::mutex mutex_;
  int running_ = 0, peak_ = 0;
  std::vector<LoadRequest> seen_;
};

const std::vector<std::string> kTexts = {"one", "two", "three", "four", "five"};

TEST(LoadDriver, TheSeedFixesEachRequest) {
  ScriptedTarget t;
  WorkloadOptions w;
  w.seed = 7;
  w.length.tokens_per_text_token = 7.5;
  w.length.sd = 1;
  LoadDriver a(t, kTexts, w), b(t, kTexts, w);
  w.seed = 8;
  LoadDriver c(t, kTexts, w);
  std::set<std::string> texts;
  bool differs = false;
  for (int64_t k = 0; k < 50; ++k) {
    EXPECT_EQ(a.request(k).text, b.request(k).text);
    EXPECT_EQ(a.request(k).seed, b.request(k).seed);
    EXPECT_EQ(a.request(k).tokens_per_text_token, b.request(k).tokens_per_text_token);
    EXPECT_GE(a.request(k).tokens_per_text_token, 7.5 / 4);
    differs = differs || a.request(k).text != c.request(k).text;
    texts.insert(a.request(k).text);
  }
  EXPECT_TRUE(differs) << "another seed, another workload";
  EXPECT_EQ(texts.size(), kTexts.size()) << "every text is drawn";
}

TEST(LoadDriver, ClosedLoopHoldsItsConcurrencyAndSkipsTheWarmUp) {
  ScriptedTarget t;
  LoadDriver d(t, kTexts, {});
  LevelPlan p;
  p.concurrency = 3;
  p.requests = 12;
  p.warmup_requests = 3;
  const LevelReport r = d.run(p);
  EXPECT_EQ(r.requests, 12);
  EXPECT_EQ(t.seen().size(), 15u);
  EXPECT_EQ(t.peak(), 3);
  EXPECT_EQ(r.failed, 0);
  EXPECT_DOUBLE_EQ(r.mean_audio_s, 1.0);
  // 3 streams of 1 s per 20 ms: about 150 audio seconds per second.
  EXPECT_GT(r.xrt, 20);
  EXPECT_LT(r.xrt, 200);
  EXPECT_GT(r.window_s, 0);
}

TEST(LoadDriver, OpenLoopSendsAtItsRateAndReportsFailures) {
  ScriptedTarget t;
  LoadDriver d(t, {"fail", "ok"}, {});
  LevelPlan p;
  p.rate = 200;
  p.requests = 40;
  p.warmup_requests = 0;
  const auto start = Clock::now();
  const LevelReport r = d.run(p);
  const double took = seconds_from(start);
  EXPECT_EQ(r.requests, 40);
  EXPECT_GT(r.failed, 0);
  EXPECT_LT(r.failed, 40);
  EXPECT_EQ(r.errors, std::vector<std::string>{"scripted failure"});
  // 40 arrivals at 200/s take about 0.2 s (Poisson: well under a second).
  EXPECT_LT(took, 2.0);
  EXPECT_EQ(r.mode, "open");
  p.requests = 0;
  EXPECT_THROW(d.run(p), Error);  // neither a count nor a duration
}

}  // namespace
}  // namespace cosy::loadtest
