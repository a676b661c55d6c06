// What a trace (runtime/trace.h, the engine's tracks) says about where the time went: each
// stage's share, how busy the compute was, bubbles (stretches when no stage ran while work
// was waiting, with what filled them), queueing delay per stage, batch sizes, and what made
// up the slowest first chunks.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cosy::profile {

struct Bubble {
  double at_s = 0, seconds = 0;      // from the trace's start
  std::string cause;                 // what ran instead, or "nothing recorded"
  std::vector<std::string> waiting;  // the stages whose work waited
};

struct FirstChunk {
  int64_t stream = 0;
  double seconds = 0;                   // opened → first audio
  std::map<std::string, double> parts;  // state → seconds within that time
};

struct StageProfile {
  double seconds = 0;  // busy time
  double share = 0;    // of the wall time
  int64_t calls = 0;
  std::map<int64_t, int64_t> batch_sizes;   // size → calls
  double queue_p50_s = 0, queue_p99_s = 0;  // "waiting for <stage>" spans
  int64_t queue_waits = 0;
};

struct TraceProfile {
  double wall_s = 0;
  double busy_s = 0;                           // some stage running
  std::map<std::string, StageProfile> stages;  // llm, flow, vocoder
  std::vector<Bubble> bubbles;                 // longest first
  double bubble_s = 0;
  int64_t streams = 0;
  std::vector<FirstChunk> slowest_first_chunks;  // slowest first
  int64_t sync_points = 0;
};

struct ProfileOptions {
  double min_bubble_s = 0.001;
  size_t top = 5;
};

// Fails with a clear message on a file that is not a trace (what is missing, where).
TraceProfile profile_trace(const nlohmann::json& trace, const ProfileOptions& options = {});
std::string format_profile(const TraceProfile& p);
nlohmann::json to_json(const TraceProfile& p);

}  // namespace cosy::profile
