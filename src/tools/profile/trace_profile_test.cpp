// The profile of traces written here with the engine's writer and tracks: a planted bubble
// is found with its cause, idle time with no work waiting is not a bubble, and the stage,
// queue and first-chunk figures add up.
#include "tools/profile/trace_profile.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"
#include "runtime/engine_trace.h"

namespace cosy::profile {
namespace {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// A stream opened at 0 waits for the LM, runs two LM calls (0–10, 10–20 ms), waits for the
// flow, which starts only at 70 ms (a planted 50 ms bubble, the scheduler planning for
// 40 ms of it), runs 70–170, waits for the vocoder 170–175, vocoder 175–185, first audio at
// 185. Then, with the stream waiting for text, nothing runs for 100 ms: not a bubble.
nlohmann::json planted_trace() {
  const auto path = cosy::testing::scratch_dir("profile-planted") / "trace.json";
  {
    TraceWriter w(path);
    EngineTrace t(w);
    const Clock::time_point o = Clock::now();
    const int64_t s = 1;
    t.stream_opened(s, o, o, "text, streaming");
    t.stream_state(s, "waiting for llm", o);
    t.stage_call(Stage::Lm, o, o + ms(10), std::vector<int64_t>{s}, {{"rows", 20}});
    t.stage_call(Stage::Lm, o + ms(10), o + ms(20), std::vector<int64_t>{s}, {{"rows", 1}});
    t.stream_state(s, "waiting for flow", o + ms(20));
    t.scheduler("plan", o + ms(25), o + ms(65));
    t.stage_call(Stage::Flow, o + ms(70), o + ms(170), std::vector<int64_t>{s}, {});
    t.stream_state(s, "waiting for vocoder", o + ms(170));
    t.stage_call(Stage::Hift, o + ms(175), o + ms(185), std::vector<int64_t>{s}, {});
    t.delivered(s, o + ms(185), o + ms(186), true, 4800);
    t.stream_state(s, "waiting for text", o + ms(186));
    t.stage_call(Stage::Lm, o + ms(286), o + ms(290), std::vector<int64_t>{s}, {{"rows", 5}});
    t.stream_ended(s, "done", o + ms(290));
  }
  return nlohmann::json::parse(read_whole_file(path));
}

TEST(TraceProfile, FindsThePlantedBubbleAndItsCause) {
  const TraceProfile p = profile_trace(planted_trace());
  ASSERT_EQ(p.bubbles.size(), 2u);  // 20–70 ms (flow waited), 170–175 ms (vocoder waited)
  const Bubble& b = p.bubbles.front();
  EXPECT_NEAR(b.seconds, 0.050, 1e-6);
  EXPECT_NEAR(b.at_s, 0.020, 1e-6);
  EXPECT_EQ(b.waiting, std::vector<std::string>{"flow"});
  EXPECT_EQ(b.cause, "scheduler: plan");
  EXPECT_NEAR(p.bubbles[1].seconds, 0.005, 1e-6);
  EXPECT_EQ(p.bubbles[1].waiting, std::vector<std::string>{"vocoder"});
  EXPECT_NEAR(p.bubble_s, 0.055, 1e-6);  // the 100 ms waiting for text is not one
}

TEST(TraceProfile, StagesQueuesBatchesAndFirstChunks) {
  const TraceProfile p = profile_trace(planted_trace());
  EXPECT_NEAR(p.wall_s, 0.290, 1e-6);
  EXPECT_NEAR(p.busy_s, 0.020 + 0.100 + 0.010 + 0.004, 1e-6);
  EXPECT_EQ(p.stages.at("llm").calls, 3);
  EXPECT_EQ(p.stages.at("llm").batch_sizes.at(1), 3);
  EXPECT_NEAR(p.stages.at("flow").seconds, 0.100, 1e-6);
  EXPECT_NEAR(p.stages.at("flow").queue_p50_s, 0.050, 1e-6);
  EXPECT_NEAR(p.stages.at("vocoder").queue_p99_s, 0.005, 1e-6);
  ASSERT_EQ(p.slowest_first_chunks.size(), 1u);
  const FirstChunk& f = p.slowest_first_chunks.front();
  EXPECT_NEAR(f.seconds, 0.185, 1e-6);
  EXPECT_NEAR(f.parts.at("flow"), 0.100, 1e-6);
  EXPECT_NEAR(f.parts.at("waiting for flow"), 0.050, 1e-6);
  EXPECT_NEAR(f.parts.at("llm"), 0.020, 1e-6);
  const std::string text = format_profile(p);
  EXPECT_NE(text.find("bubbles (no stage running while work waited): 2"), std::string::npos)
      << text;
  EXPECT_EQ(to_json(p)["bubbles"].size(), 2u);
}

TEST(TraceProfile, WhatIsNotATraceIsAClearError) {
  EXPECT_THROW(profile_trace(nlohmann::json::object()), Error);
  EXPECT_THROW(profile_trace(nlohmann::json::parse(R"({"traceEvents":[{"ph":"X"}]})")), Error);
  EXPECT_THROW(profile_trace(nlohmann::json::parse(R"({"traceEvents":[]})")), Error);
}

}  // namespace
}  // namespace cosy::profile
