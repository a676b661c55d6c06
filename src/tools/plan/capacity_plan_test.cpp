// The planner on sweeps with known answers.
#include "tools/plan/capacity_plan.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cosy::plan {
namespace {

using Json = nlohmann::json;

Json level(int64_t c, double ttfa_p99, double no_stall, double rtf_p50, int64_t failed = 0) {
  auto q = [](double v) { return Json{{"p50", v}, {"p90", v}, {"p99", v}, {"max", v}}; };
  return {{"mode", "closed"},
          {"concurrency", c},
          {"rate", 0},
          {"requests", 16},
          {"failed", failed},
          {"window_s", 60},
          {"xrt", c / rtf_p50},
          {"first_audio_s", q(ttfa_p99)},
          {"rtf", q(rtf_p50)},
          {"stall_s", q(0)},
          {"no_stall_share", no_stall},
          {"mean_audio_s", 8}};
}

// c = 4 is the highest level within first audio p99 <= 1 s and no stalls.
Sweep sweep() {
  const Json j = {{"target", "a test card"},
                  {"levels",
                   {level(1, 0.3, 1, 0.2), level(2, 0.4, 1, 0.3), level(4, 0.8, 1, 0.5),
                    level(8, 2.0, 0.9, 0.9), level(16, 5.0, 0.5, 1.5)}}};
  return sweep_from_json(j, "test.json");
}

TEST(CapacityPlan, PeakStreamsOverTheOperatingPointWithHeadroom) {
  Traffic t;
  t.peak_streams = 100;
  t.ttfa_p99_s = 1.0;
  t.min_no_stall = 1.0;
  t.headroom = 0.2;
  const Plan p = plan_capacity(sweep(), t);
  EXPECT_EQ(p.point.concurrency, 4);
  EXPECT_EQ(p.instances, 30);  // ceil(100 × 1.2 / 4)
  EXPECT_NEAR(p.utilisation, 100.0 / 120, 1e-12);
  // Looser service levels: c = 8 meets p99 <= 2.5 s with 90 % stall-free.
  t.ttfa_p99_s = 2.5;
  t.min_no_stall = 0.9;
  EXPECT_EQ(plan_capacity(sweep(), t).instances, 15);  // ceil(120 / 8)
  // The seed's fleet: 2700 streams at 6 per card without headroom is 450 cards.
  t.peak_streams = 2700;
  t.headroom = 0;
  const Plan seed = plan_capacity(sweep(), t);
  EXPECT_EQ(seed.instances, 338);  // ceil(2700 / 8)
  bool six = false;
  for (const auto& [c, n] : seed.sensitivity) {
    if (c == 6) six = n == 450;
  }
  EXPECT_TRUE(six) << "at 6 streams per card (0.75 × 8): 450 cards";
}

TEST(CapacityPlan, ARateBecomesAPoissonTailOfConcurrentStreams) {
  // 2 requests/s of 10 s audio at RTF 0.5 (c = 4): 10 streams on average; P(X > 18) <= 1 %.
  EXPECT_EQ(poisson_quantile(10, 0.01), 18);
  EXPECT_EQ(poisson_quantile(0.5, 0.5), 0);
  EXPECT_EQ(poisson_quantile(1e4, 0.01), 10233);  // 1e4 + 2.326 × 100, rounded up
  Traffic t;
  t.rate = 2;
  t.utterance_seconds = 10;
  t.ttfa_p99_s = 1;
  t.min_no_stall = 1;
  t.headroom = 0;
  const Plan p = plan_capacity(sweep(), t);
  EXPECT_NEAR(p.offered_load, 10, 1e-12);
  EXPECT_EQ(p.needed_streams, 18);
  EXPECT_EQ(p.instances, 5);  // ceil(18 / 4)
  EXPECT_NEAR(p.audio_hours_per_instance_hour, 20.0 / 5, 1e-12);
  t.cost_per_hour = 2.5;
  const Plan priced = plan_capacity(sweep(), t);
  EXPECT_NEAR(priced.cost_per_hour, 12.5, 1e-12);
  EXPECT_NEAR(priced.cost_per_audio_hour, 12.5 / 20, 1e-12);
}

TEST(CapacityPlan, WhatCannotBeServedOrReadIsAClearError) {
  Traffic t;
  t.peak_streams = 10;
  t.ttfa_p99_s = 0.1;  // even one stream alone takes 0.3 s
  try {
    plan_capacity(sweep(), t);
    FAIL() << "an impossible service level was planned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("No number of these instances"), std::string::npos)
        << e.what();
  }
  t.ttfa_p99_s = 1;
  t.rate = 1;  // both
  EXPECT_THROW(plan_capacity(sweep(), t), Error);
  EXPECT_THROW(sweep_from_json(Json::object(), "x.json"), Error);
  Json bad = {{"levels", {level(1, 0.3, 1, 0.2)}}};
  bad["levels"][0].erase("xrt");
  try {
    sweep_from_json(bad, "bad.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: level 1: 'xrt'"), std::string::npos)
        << e.what();
  }
  // Failures at a level disqualify it.
  const Json failing = {{"levels", {level(1, 0.3, 1, 0.2), level(2, 0.4, 1, 0.3, 1)}}};
  t.rate = 0;
  EXPECT_EQ(plan_capacity(sweep_from_json(failing, "f.json"), t).point.concurrency, 1);
}

}  // namespace
}  // namespace cosy::plan
