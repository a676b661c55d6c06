// Which stage the engine's scheduler runs next, and over which streams.
//   - lockstep: every stage, every pass, over every stream ready for it (batch whatever is
//     ready). Simple and fair, but a stream about to run out of audio, or one still waiting
//     for its first word, waits behind every other stream's flow chunk.
//   - deadline: each streaming stream has a deadline, when its listener's audio runs out at
//     real-time playback (a new stream: its time-to-first-audio target). Each pass serves
//     first the playing streams closest to a stall (those that could not wait out one more
//     flow chunk), then the first chunks of new streams, then the rest, by laxity within
//     each (deadline less the work still needed before the stream's next audio); a flow or
//     vocoder batch stops growing where it would make the most urgent stream left out late.
//     The LM step (cheap, batched) runs with every pass. Offline streams have no deadline
//     and fill what is left.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace cosy {

enum class SchedulePolicy { Lockstep, Deadline };
const char* schedule_policy_name(SchedulePolicy p);
SchedulePolicy parse_schedule_policy(const std::string& s);  // lockstep | deadline

enum class Stage { None, Lm, Flow, Hift };

// What one stream needs before its next audio, as the scheduler sees it now.
struct StreamNeed {
  double deadline_s = std::numeric_limits<double>::infinity();  // from now; inf: offline
  bool started = false;     // audio has gone out (a listener is playing)
  bool lm_ready = false;    // its LM has input to run
  bool flow_ready = false;  // its next flow chunk can run
  bool hift_ready = false;  // the vocoder has mel for it
  int64_t lm_steps = 0;     // LM steps before its next flow chunk can run
  double flow_flops = 0;    // the work of its next flow call (FlowStream::next_call_flops)
  int64_t hift_frames = 0;  // mel frames its next vocoder step covers
};

// Seconds per unit of work, as measured (moving averages of the stages' calls).
struct StageCosts {
  double lm_step_s = 0;
  double flow_s_per_flop = 0;
  double hift_frame_s = 0;
  // Folds one call in (weight 0.2: the last few calls dominate).
  void observe_lm(double seconds);
  void observe_flow(double seconds, double flops);
  void observe_hift(double seconds, int64_t frames);
};

// The stage on the way to a stream's next audio: vocoder, else flow, else LM; None when it
// waits on input.
Stage next_stage(const StreamNeed& n);
// Seconds of work before the stream's next audio.
double work_before_audio(const StreamNeed& n, const StageCosts& c);
// Its deadline less that work: how long it can wait.
double laxity(const StreamNeed& n, const StageCosts& c);

// The order streams are served in: playing streams closest to a stall, then new streams,
// then the rest, then offline streams; by laxity within each.
struct Urgency {
  int tier = 2;
  double laxity = 0;
  bool operator<(const Urgency& o) const {
    return tier != o.tier ? tier < o.tier : laxity < o.laxity;
  }
};
// `stall_guard_s`: a playing stream with less laxity than this is closest to a stall.
Urgency urgency(const StreamNeed& n, const StageCosts& c, double stall_guard_s);

struct PassPlan {
  Stage stage = Stage::None;    // Flow or Hift: run it over `members`; Lm: the LM alone
  std::vector<size_t> members;  // indices into the needs, most urgent first
};

// The deadline policy's next pass. The most urgent stream with work it can do picks the
// stage; the batch takes the other streams ready for that stage, most urgent first, while
// its estimated time stays within the laxity of the most urgent stream left out and makes
// no member late (each member's own part plus its laxity; a late stream runs alone). In
// overload (the most urgent listener already stalls) every ready stream goes in: the
// fullest batch makes the most audio for all. The stall
// guard is the longest flow chunk among the streams (and its vocoder step): a playing stream that
// cannot wait that long is closest to a stall.
PassPlan plan_deadline_pass(std::span<const StreamNeed> needs, const StageCosts& costs);

}  // namespace cosy
