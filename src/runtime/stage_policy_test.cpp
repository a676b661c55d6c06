// The deadline policy on made-up streams (no model): who is served first, which stage runs,
// and where a batch stops growing.
#include "runtime/stage_policy.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cosy {
namespace {

StageCosts costs() {
  StageCosts c;
  c.lm_step_s = 0.01;
  c.flow_s_per_flop = 0.01;  // a 30-token chunk: 0.3 s
  c.hift_frame_s = 0.001;
  return c;
}

StreamNeed playing(double deadline, bool flow_ready) {
  StreamNeed n;
  n.started = true;
  n.deadline_s = deadline;
  n.flow_ready = flow_ready;
  n.lm_ready = !flow_ready;
  n.lm_steps = flow_ready ? 0 : 5;
  n.flow_flops = 30;
  n.hift_frames = 0;
  return n;
}

TEST(StagePolicy, ANewStreamsFirstWordsGoBeforeWorkThatCanWait) {
  StreamNeed fresh;
  fresh.deadline_s = 0.5;
  fresh.lm_ready = true;
  fresh.lm_steps = 28;
  fresh.flow_flops = 28;
  const std::vector<StreamNeed> needs = {playing(8, true), playing(9, true), fresh};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Lm);
}

TEST(StagePolicy, AListenerAboutToStallGoesFirst) {
  StreamNeed fresh;
  fresh.deadline_s = -3;  // its first-audio target long missed
  fresh.lm_ready = true;
  fresh.lm_steps = 28;
  fresh.flow_flops = 28;
  StreamNeed stalling = playing(0.2, false);
  stalling.hift_ready = true;  // mel waiting for the vocoder
  stalling.hift_frames = 40;
  const std::vector<StreamNeed> needs = {fresh, playing(9, true), stalling};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Hift);
  EXPECT_EQ(p.members, std::vector<size_t>{2});
  EXPECT_LT(urgency(stalling, costs(), 0.3), urgency(fresh, costs(), 0.3));
  EXPECT_LT(urgency(fresh, costs(), 0.3), urgency(playing(9, true), costs(), 0.3));
}

// A (laxity 0.6) picks the flow; D needs the LM and can wait 0.65 s: A and B (0.6 s) fit,
// C would make D late.
TEST(StagePolicy, ABatchStopsWhereItWouldMakeTheNextStreamLate) {
  const std::vector<StreamNeed> needs = {playing(0.9, true), playing(5, true), playing(6, true),
                                         playing(1.0, false)};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Flow);
  EXPECT_EQ(p.members, (std::vector<size_t>{0, 1}));
  // With D's deadline far away, the batch grows until A itself would be late: A (0.9 s)
  // cannot wait for three chunks (0.9 s and its vocoder step).
  const std::vector<StreamNeed> relaxed = {playing(0.9, true), playing(5, true), playing(6, true),
                                           playing(60, false)};
  EXPECT_EQ(plan_deadline_pass(relaxed, costs()).members, (std::vector<size_t>{0, 1}));
  // Nobody near a deadline: everything ready in one batch.
  const std::vector<StreamNeed> calm = {playing(2, true), playing(5, true), playing(6, true),
                                        playing(60, false)};
  EXPECT_EQ(plan_deadline_pass(calm, costs()).members, (std::vector<size_t>{0, 1, 2}));
}

// A new stream already past its first-audio target runs its flow chunk alone: anything
// added to its call would make its first audio later still.
TEST(StagePolicy, ALateFirstChunkRunsAlone) {
  StreamNeed late;
  late.deadline_s = -0.2;
  late.flow_ready = true;
  late.flow_flops = 28;
  const std::vector<StreamNeed> needs = {playing(5, true), late, playing(6, true)};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Flow);
  EXPECT_EQ(p.members, std::vector<size_t>{1});
}

// Overload: the most urgent listener is already stalling; every ready stream joins its
// batch, where outside overload the batch would stop at the next deadline.
TEST(StagePolicy, InOverloadTheBatchTakesEveryReadyStream) {
  const std::vector<StreamNeed> needs = {playing(-0.5, true), playing(0.1, true),
                                         playing(0.2, true), playing(0.3, false)};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Flow);
  EXPECT_EQ(p.members, (std::vector<size_t>{0, 1, 2}));
}

TEST(StagePolicy, OfflineFillsWhatIsLeftAndNothingReadyIsNoPass) {
  StreamNeed offline;
  offline.flow_ready = true;
  offline.flow_flops = 200;
  const std::vector<StreamNeed> needs = {offline, playing(3, true)};
  const PassPlan p = plan_deadline_pass(needs, costs());
  EXPECT_EQ(p.stage, Stage::Flow);
  EXPECT_EQ(p.members.front(), 1u);
  EXPECT_EQ(plan_deadline_pass(std::vector<StreamNeed>{offline}, costs()).members,
            std::vector<size_t>{0});
  StreamNeed waiting;  // waits for text
  EXPECT_EQ(plan_deadline_pass(std::vector<StreamNeed>{waiting}, costs()).stage, Stage::None);
}

TEST(StagePolicy, CostsAreMovingAveragesAndPoliciesHaveNames) {
  StageCosts c;
  c.observe_flow(3.0, 30);
  EXPECT_DOUBLE_EQ(c.flow_s_per_flop, 0.1);
  c.observe_flow(6.0, 30);
  EXPECT_DOUBLE_EQ(c.flow_s_per_flop, 0.8 * 0.1 + 0.2 * 0.2);
  EXPECT_EQ(parse_schedule_policy("lockstep"), SchedulePolicy::Lockstep);
  EXPECT_STREQ(schedule_policy_name(SchedulePolicy::Deadline), "deadline");
  EXPECT_THROW(parse_schedule_policy("fifo"), Error);
}

}  // namespace
}  // namespace cosy
