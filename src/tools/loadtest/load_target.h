// What a load test drives: the in-process engine or a running server. A target runs one
// request at a time per calling thread, to its end, and reports when each piece of audio
// arrived; the driver runs as many threads as the load needs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/playback.h"

namespace cosy::loadtest {

using Clock = std::chrono::steady_clock;

struct LoadRequest {
  int64_t id = 0;
  std::string text;
  uint64_t seed = 0;
  // > 0: the LM's length is forced to this many speech tokens per text token; 0: the model
  // decides (random weights then run to their length limit).
  double tokens_per_text_token = 0;
  // > 0: the text goes in piece by piece at this many pieces (text tokens) per second,
  // through the bistream path; 0: whole.
  double text_rate = 0;
};

struct StreamRecord {
  int64_t id = 0;
  double sent_s = 0;              // when the request was sent, seconds since the level began
  std::vector<Arrival> arrivals;  // relative to sent
  double ended_s = 0;             // when the stream's end was known, relative to sent
  bool ok = false;
  std::string error;  // !ok: why
};

class LoadTarget {
 public:
  virtual ~LoadTarget() = default;
  virtual std::string describe() const = 0;
  // Runs one request to its end on the calling thread; `sent` is when it counts as sent.
  // Never throws: a failure is a record with ok = false. `stop` set: end the request now.
  virtual StreamRecord run(const LoadRequest& request, Clock::time_point sent,
                           const std::atomic<bool>& stop) = 0;
  // The engine's counters, when the target can see them (in process).
  virtual std::optional<EngineStats> engine_stats() const { return std::nullopt; }
};

// A duration of `s` seconds on the clock.
inline Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Seconds from `from` to now.
inline double seconds_from(Clock::time_point from) {
  return std::chrono::duration<double>(Clock::now() - from).count();
}

}  // namespace cosy::loadtest
