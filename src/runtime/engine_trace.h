// The engine's side of a trace (runtime/trace.h): a track per stage with a span per batched
// call (batch size, rows or frames, FLOPs, the streams in it), a track for the scheduler's
// own bookkeeping, and a track per stream with what it was doing between its opening and
// its end: waiting for text, waiting for a stage, in a stage, handing audio to its client.
// Scheduler thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "runtime/stage_policy.h"
#include "runtime/trace.h"

namespace cosy {

class EngineTrace {
 public:
  using Clock = std::chrono::steady_clock;
  explicit EngineTrace(TraceWriter& writer);

  void stream_opened(int64_t serial, Clock::time_point opened, Clock::time_point admitted,
                     const std::string& description);
  // What the stream does from now on; the previous state's span ends here.
  void stream_state(int64_t serial, const char* state, Clock::time_point now);
  // One batched call of a stage: its span, and one per stream in it.
  void stage_call(Stage stage, Clock::time_point begin, Clock::time_point end,
                  std::span<const int64_t> serials, nlohmann::json args);
  // A voice's prompt state, computed beside the stages' calls (a flow span on a track of
  // its own), for the stream whose request started it; `error`: empty when it succeeded.
  void prompt_state(Clock::time_point begin, Clock::time_point end, int64_t requested_by,
                    const std::string& error);
  // The audio callback: how long the client's side took to take a chunk.
  void delivered(int64_t serial, Clock::time_point begin, Clock::time_point end, bool first,
                 int64_t samples);
  void stream_ended(int64_t serial, const char* status, Clock::time_point now);
  void scheduler(const char* what, Clock::time_point begin, Clock::time_point end);
  void counters(Clock::time_point now, int64_t streams_open, int64_t kv_blocks_used);
  // Sync points inside the next calls land on this stage's track.
  static void enter_stage(Stage stage);

  static const char* stage_name(Stage stage);  // llm | flow | vocoder

 private:
  struct State {
    const char* name = nullptr;
    Clock::time_point since;
  };
  TraceWriter& w_;
  std::map<int64_t, State> states_;
  int64_t last_open_ = -1, last_kv_ = -1;
};

}  // namespace cosy
