#include "runtime/stage_policy.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace cosy {

const char* schedule_policy_name(SchedulePolicy p) {
  return p == SchedulePolicy::Lockstep ? "lockstep" : "deadline";
}

SchedulePolicy parse_schedule_policy(const std::string& s) {
  if (s == "lockstep") return SchedulePolicy::Lockstep;
  if (s == "deadline") return SchedulePolicy::Deadline;
  fail("unknown schedule '", s, "' (lockstep | deadline)");
}

namespace {
void fold(double& average, double sample) {
  average = average == 0 ? sample : 0.8 * average + 0.2 * sample;
}
}  // namespace

void StageCosts::observe_lm(double seconds) { fold(lm_step_s, seconds); }
void StageCosts::observe_flow(double seconds, double flops) {
  if (flops > 0) fold(flow_s_per_flop, seconds / flops);
}
void StageCosts::observe_hift(double seconds, int64_t frames) {
  if (frames > 0) fold(hift_frame_s, seconds / static_cast<double>(frames));
}

Stage next_stage(const StreamNeed& n) {
  if (n.hift_ready) return Stage::Hift;
  if (n.flow_ready) return Stage::Flow;
  if (n.lm_ready) return Stage::Lm;
  return Stage::None;
}

double work_before_audio(const StreamNeed& n, const StageCosts& c) {
  const double hift = c.hift_frame_s * static_cast<double>(std::max<int64_t>(n.hift_frames, 1));
  const double flow = c.flow_s_per_flop * n.flow_flops;
  switch (next_stage(n)) {
    case Stage::Hift:
      return hift;
    case Stage::Flow:
      return flow + hift;
    default:
      return c.lm_step_s * static_cast<double>(n.lm_steps) + flow + hift;
  }
}

double laxity(const StreamNeed& n, const StageCosts& c) {
  return n.deadline_s - work_before_audio(n, c);
}

Urgency urgency(const StreamNeed& n, const StageCosts& c, double stall_guard_s) {
  Urgency u;
  u.laxity = laxity(n, c);
  if (n.deadline_s == std::numeric_limits<double>::infinity()) {
    u.tier = 3;  // offline: no listener waits
  } else if (!n.started) {
    u.tier = 1;
    // A missed first-audio target grows no more urgent than a listener about to stall.
    u.laxity = std::max(u.laxity, -work_before_audio(n, c));
  } else if (u.laxity < stall_guard_s) {
    u.tier = 0;
  }
  return u;
}

PassPlan plan_deadline_pass(std::span<const StreamNeed> needs, const StageCosts& costs) {
  double guard = 0;
  for (const StreamNeed& n : needs) {
    guard = std::max(guard, costs.flow_s_per_flop * n.flow_flops +
                                costs.hift_frame_s * static_cast<double>(n.hift_frames));
  }
  std::vector<size_t> order;
  std::vector<Urgency> key(needs.size());
  std::vector<double> lax(needs.size());
  for (size_t i = 0; i < needs.size(); ++i) {
    if (next_stage(needs[i]) == Stage::None) continue;
    key[i] = urgency(needs[i], costs, guard);
    lax[i] = key[i].laxity;
    order.push_back(i);
  }
  PassPlan plan;
  if (order.empty()) return plan;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
  plan.stage = next_stage(needs[order.front()]);
  if (plan.stage == Stage::Lm) return plan;  // the LM step serves every ready stream anyway
  const bool flow = plan.stage == Stage::Flow;
  auto ready = [&](size_t i) { return flow ? needs[i].flow_ready : needs[i].hift_ready; };
  auto cost = [&](size_t i) {
    return flow ? costs.flow_s_per_flop * needs[i].flow_flops
                : costs.hift_frame_s * static_cast<double>(needs[i].hift_frames);
  };
  std::vector<size_t> candidates, left_out;
  for (const size_t i : order) (ready(i) ? candidates : left_out).push_back(i);
  // Overload: the most urgent listener is already in a stall. No order saves everyone then,
  // and the fullest batch makes the most audio for all: every ready stream goes in.
  const size_t first = order.front();
  if (key[first].tier == 0 && lax[first] < 0) {
    plan.members = candidates;
    return plan;
  }
  // Otherwise the batch may take as long as the most urgent stream it leaves out can wait,
  // and a member's next audio waits for the whole batch instead of its own part: the batch
  // may take as long as each member's own part plus its laxity (a late stream: its own
  // part alone).
  double budget = std::numeric_limits<double>::infinity();
  if (!left_out.empty()) budget = std::max(0.0, lax[left_out.front()]);
  double spent = 0;
  for (const size_t i : candidates) {
    const double c = cost(i);
    if (!plan.members.empty() && (spent + c > budget || spent + c > lax[i] + c)) {
      // Left out now, this one may be the next pass's most urgent; later ones could still
      // fit, but keeping urgency order keeps the policy predictable.
      break;
    }
    spent += c;
    budget = std::min(budget, lax[i] + c);
    plan.members.push_back(i);
  }
  return plan;
}

}  // namespace cosy
