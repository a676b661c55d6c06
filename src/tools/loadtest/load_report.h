// What a load level measured, as a listener hears it: per stream (time to first audio,
// audio, RTF, stalls) and per level (xRT over the measurement window, first-audio
// percentiles, the share of streams with no stall, stall-time p99, each stage's batches).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "tools/loadtest/load_target.h"

namespace cosy::loadtest {

struct StreamFigures {
  int64_t id = 0;
  double sent_s = 0;
  bool ok = false;
  std::string error;
  double first_audio_s = -1;
  double audio_s = 0;
  double total_s = 0;  // sent to end
  double rtf = 0;      // total_s / audio_s
  int64_t stalls = 0;
  double stall_s = 0;
};

StreamFigures stream_figures(const StreamRecord& r, double buffer_s);

// numpy's default ("linear") percentile, q in [0, 100]; 0 for no values.
double percentile(std::vector<double> values, double q);

struct Quantiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};
Quantiles quantiles(const std::vector<double>& values);

struct LevelReport {
  std::string mode;      // closed | open
  std::string schedule;  // the engine's policy, when the load test set it
  int64_t concurrency = 0;
  double rate = 0;       // open loop: requests per second
  int64_t requests = 0;  // measured (after warm-up)
  int64_t failed = 0;
  std::vector<std::string> errors;  // the first few, distinct
  double window_s = 0;              // the measurement window
  double audio_in_window_s = 0;
  double xrt = 0;  // audio seconds per wall second over the window
  Quantiles first_audio_s, rtf, stall_s;
  double no_stall_share = 0;  // of the measured streams that succeeded
  int64_t stalls = 0;
  double mean_audio_s = 0;
  // The engine's stages over the window, when the target shows them.
  std::optional<EngineStats> stages;
  std::vector<StreamFigures> streams;
};

// `records`: every stream of the level, warm-up included (their audio counts towards xRT in
// the window); `measured(id)`: whether a stream is past the warm-up.
LevelReport summarize(const std::string& mode, int64_t concurrency, double rate,
                      const std::vector<StreamRecord>& records, int64_t first_measured_id,
                      double window_from_s, double window_to_s, double buffer_s);

nlohmann::json to_json(const LevelReport& r, bool with_streams);
// The level from to_json (what plan reads back); fails naming what is missing.
LevelReport level_from_json(const nlohmann::json& j);

}  // namespace cosy::loadtest
