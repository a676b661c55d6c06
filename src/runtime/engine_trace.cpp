#include "runtime/engine_trace.h"

#include <cstring>

namespace cosy {

namespace tt = trace_tracks;

namespace {
int64_t stage_track(Stage stage) {
  switch (stage) {
    case Stage::Lm:
      return tt::kLlm;
    case Stage::Flow:
      return tt::kFlow;
    default:
      return tt::kVocoder;
  }
}
}  // namespace

const char* EngineTrace::stage_name(Stage stage) {
  switch (stage) {
    case Stage::Lm:
      return "llm";
    case Stage::Flow:
      return "flow";
    case Stage::Hift:
      return "vocoder";
    default:
      return "none";
  }
}

EngineTrace::EngineTrace(TraceWriter& writer) : w_(writer) {
  w_.name_track(tt::kEngine, tt::kLlm, "engine", "llm");
  w_.name_track(tt::kEngine, tt::kFlow, "engine", "flow");
  w_.name_track(tt::kEngine, tt::kVocoder, "engine", "vocoder");
  w_.name_track(tt::kEngine, tt::kScheduler, "engine", "scheduler");
}

void EngineTrace::stream_opened(int64_t serial, Clock::time_point opened,
                                Clock::time_point admitted, const std::string& description) {
  w_.name_track(tt::kStreams, serial, "streams", "stream " + std::to_string(serial));
  w_.instant(tt::kStreams, serial, "opened", opened, {{"stream", description}});
  w_.span(tt::kStreams, serial, "waiting for admission", opened, admitted);
  states_[serial] = {nullptr, admitted};
}

void EngineTrace::stream_state(int64_t serial, const char* state, Clock::time_point now) {
  State& s = states_[serial];
  if (s.name == state || (s.name != nullptr && state != nullptr && std::strcmp(s.name, state) == 0))
    return;
  if (s.name != nullptr) w_.span(tt::kStreams, serial, s.name, s.since, now);
  s = {state, now};
}

void EngineTrace::stage_call(Stage stage, Clock::time_point begin, Clock::time_point end,
                             std::span<const int64_t> serials, nlohmann::json args) {
  args["batch"] = serials.size();
  args["streams"] = std::vector<int64_t>(serials.begin(), serials.end());
  w_.span(tt::kEngine, stage_track(stage), stage_name(stage), begin, end, args);
  for (const int64_t serial : serials) {
    stream_state(serial, nullptr, begin);
    w_.span(tt::kStreams, serial, stage_name(stage), begin, end);
    states_[serial] = {nullptr, end};
  }
}

void EngineTrace::prompt_state(Clock::time_point begin, Clock::time_point end, int64_t requested_by,
                               const std::string& error) {
  w_.name_track(tt::kEngine, tt::kVoicePrompts, "engine", "flow: voice prompt states");
  nlohmann::json args = {{"voice prompt state", true}, {"requested by stream", requested_by}};
  if (!error.empty()) args["error"] = error;
  w_.span(tt::kEngine, tt::kVoicePrompts, stage_name(Stage::Flow), begin, end, args);
}

void EngineTrace::delivered(int64_t serial, Clock::time_point begin, Clock::time_point end,
                            bool first, int64_t samples) {
  stream_state(serial, nullptr, begin);
  w_.span(tt::kStreams, serial, "to client", begin, end, {{"samples", samples}});
  if (first) w_.instant(tt::kStreams, serial, "first audio", begin);
  states_[serial] = {nullptr, end};
}

void EngineTrace::stream_ended(int64_t serial, const char* status, Clock::time_point now) {
  stream_state(serial, nullptr, now);
  w_.instant(tt::kStreams, serial, "ended", now, {{"status", status}});
  states_.erase(serial);
}

void EngineTrace::scheduler(const char* what, Clock::time_point begin, Clock::time_point end) {
  w_.span(tt::kEngine, tt::kScheduler, what, begin, end);
}

void EngineTrace::counters(Clock::time_point now, int64_t streams_open, int64_t kv_blocks_used) {
  if (streams_open == last_open_ && kv_blocks_used == last_kv_) return;
  last_open_ = streams_open;
  last_kv_ = kv_blocks_used;
  w_.counter("engine", now, {{"streams open", streams_open}, {"kv blocks used", kv_blocks_used}});
}

void EngineTrace::enter_stage(Stage stage) {
  TraceWriter::set_thread_track(tt::kEngine, stage_track(stage));
}

}  // namespace cosy
