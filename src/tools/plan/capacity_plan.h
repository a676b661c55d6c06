// How many instances (cards or machines) a traffic profile needs, from a load-test sweep
// measured on one instance (cosyserve loadtest --json). The method (docs/capacity.md):
//   1. the operating point: the highest measured concurrency whose first-audio p99 meets
//      the target with (almost) no stalls; its concurrency is one instance's capacity C;
//   2. peak concurrent streams N given: instances = ceil(N × (1 + headroom) / C);
//   3. an arrival rate R given instead: each stream holds an instance for its utterance's
//      synthesis time T (utterance seconds × the RTF measured at the operating point), so
//      concurrent streams are Poisson with mean R × T (M/G/∞, whatever the length
//      distribution); N is the quantile exceeded with probability `overflow`, then as 2.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/loadtest/load_report.h"

namespace cosy::plan {

struct Sweep {
  std::string source;                         // the file
  std::string target;                         // what was measured (the loadtest's description)
  std::vector<loadtest::LevelReport> levels;  // closed-loop levels, by concurrency
};
// Fails naming the file and what is missing or wrong.
Sweep sweep_from_json(const nlohmann::json& j, const std::string& source);

struct Traffic {
  double peak_streams = 0;       // or
  double rate = 0;               // arrivals per second
  double utterance_seconds = 0;  // mean audio per request (rate mode)
  double ttfa_p99_s = 1.0;       // the service level for first audio
  double min_no_stall = 0.99;    // share of streams that must play without a stall
  double headroom = 0.2;         // spare capacity over the need
  double overflow = 0.01;        // rate mode: the chance the need exceeds the fleet
  double cost_per_hour = 0;      // per instance, optional
  void validate() const;
};

struct OperatingPoint {
  int64_t concurrency = 0;  // streams one instance holds within the service levels
  std::string schedule;     // the engine's schedule at that level, when the sweep says
  double ttfa_p99_s = 0, no_stall = 0, xrt = 0, rtf_p50 = 0;
};

struct Plan {
  OperatingPoint point;
  double needed_streams = 0;  // the concurrency to serve (peak, or the Poisson quantile)
  double offered_load = 0;    // rate mode: mean concurrent streams (Erlangs)
  int64_t instances = 0;      // with headroom
  double utilisation = 0;     // needed / (instances × capacity)
  double audio_hours_per_instance_hour = 0;           // at the needed load
  double cost_per_hour = 0, cost_per_audio_hour = 0;  // when a price was given
  // How the answer moves with one instance's capacity: (capacity, instances).
  std::vector<std::pair<double, int64_t>> sensitivity;
};

// Fails when no measured level meets the service levels (saying what the best one gives).
OperatingPoint operating_point(const Sweep& sweep, const Traffic& traffic);
Plan plan_capacity(const Sweep& sweep, const Traffic& traffic);
// The smallest n with P(Poisson(mean) > n) <= p.
int64_t poisson_quantile(double mean, double p);

std::string format_plan(const Plan& plan, const Traffic& traffic, const Sweep& sweep);
nlohmann::json to_json(const Plan& plan, const Traffic& traffic);
std::string plan_chart(const Plan& plan, const Traffic& traffic);

}  // namespace cosy::plan
