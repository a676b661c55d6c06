// The synthesis engine: one model (CosyVoice2 or CosyVoice3) loaded once and shared
// read-only, any number of independent streams on it, and one scheduler thread that
// advances every stream's stages (speech LM → flow → vocoder) in batched steps across
// streams:
//   - LM: one batched forward per step over every stream that has input ready (prefill
//     and decode rows together, continuous batching over a paged KV pool);
//   - flow: one batched call over every stream with a chunk ready;
//   - vocoder: one batched call over every stream with new mel.
// Each stream holds its own sessions, caches and generators (nothing leaks between
// streams); a stream waiting for text holds up nobody. Text segments of one stream run in
// order, the next segment's LM overlapping the current one's flow and vocoder.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/lm/speech_lm.h"
#include "model/model_folder.h"
#include "runtime/lm_runner.h"
#include "runtime/silent_tokens.h"
#include "runtime/stage_policy.h"
#include "runtime/stages/model_stages.h"
#include "runtime/synthesis_stream.h"
#include "runtime/trace.h"
#include "text/text_frontend.h"

namespace cosy {

struct EngineOptions {
  WeightFormat llm_weights = WeightFormat::F32;
  WeightFormat flow_weights = WeightFormat::F32;
  WeightFormat hift_weights = WeightFormat::F32;
  int64_t max_streams = 64;  // open streams at once; open() beyond is refused
  int64_t kv_blocks = 2048;  // the LM's KV pool, in blocks of kv_block_size positions
  int64_t kv_block_size = 16;
  // Per stream: characters of text (Unicode code points), or text tokens when ids are
  // given. About 20 minutes of speech; a longer text is refused, not spoken for hours.
  int64_t max_input_chars = 20000;
  // Voices whose prompt flow state is kept (FlowModel::prompt_state), so incremental
  // streaming streams skip the prompt's complete chunks; 0: off. A voice's state is
  // computed off the scheduler thread (runtime/prompt_state_cache.h): only that voice's
  // streams wait for it. At full size a 3 s prompt's state is about 460 MB.
  int64_t prompt_state_voices = 4;
  // Streaming chunks whose CFG half's first Euler pass is kept (UncondFirstPassCache): a
  // stream's first chunk then skips 1 of its 20 estimator passes when an earlier stream
  // had the same prompt length and first hop; 0: off. About 35 MB each at full size for a
  // 3 s prompt.
  int64_t uncond_first_passes = 4;
  // Voices whose LM prefix (sos + prompt text) is kept in the KV pool once a stream has
  // computed it, so later streams of the voice skip those positions in their prefill
  // (LmRunnerOptions::voice_prefixes); 0: off.
  int64_t lm_voice_prefixes = 8;
  // The flow estimator's visible left chunks when streaming (num_decoding_left_chunks).
  // Unset: the model's own (-1 in the official cosyvoice2.yaml: all of them, exact). A
  // bound N >= 0 CHANGES THE OUTPUT from the official model's, and in exchange bounds each
  // stream's estimator state to N + 1 chunks (plus the chunk being computed) however long
  // the stream runs.
  std::optional<int64_t> flow_left_chunks;
  // How the scheduler picks each step's work (runtime/stage_policy.h): deadline-aware, or
  // every stage over everything ready (lockstep).
  SchedulePolicy schedule = SchedulePolicy::Deadline;
  // Deadline policy: a new stream's time-to-first-audio target, seconds.
  double ttfa_target_s = 0.2;
  ConfigFields fields() const;
  std::string to_string() const;
  void validate() const;
};

struct StageStats {
  double seconds = 0;                // wall time of the stage's batched calls
  double flops = 0;                  // useful work done (see engine.cpp)
  int64_t calls = 0;                 // batched calls
  int64_t items = 0;                 // stream-steps served by those calls
  std::vector<int64_t> batch_sizes;  // [n]: calls that served n streams
};

struct EngineStats {
  StageStats llm, flow, hift;
  int64_t streams_opened = 0;
  int64_t streams_open = 0;
  int64_t prompt_state_starts = 0;  // segments whose flow started from a cached prompt state
  int64_t lm_evictions = 0;         // LM caches dropped (and recomputed later) under KV pressure
  int64_t lm_prefix_rows = 0;       // LM positions taken from a cached voice prefix, not fed
  // The streams' own incremental flow state (what they add to their voice's prompt
  // state): now, and the most it has been.
  int64_t flow_state_bytes = 0;
  int64_t flow_state_peak_bytes = 0;
  // Memory of the cached prompt states (one per recent voice), read by their streams
  // without copying.
  int64_t prompt_state_bytes = 0;
  // First chunks whose CFG half's first pass came from the cache, and the cache's memory.
  int64_t uncond_first_pass_hits = 0;
  int64_t uncond_first_pass_bytes = 0;
  // The LM's paged KV pool after the scheduler's last pass: blocks in all and free, and the
  // sequences holding blocks (streams' and cached voice prefixes').
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_free = 0;
  int64_t kv_sequences = 0;
};

class Engine {
 public:
  // Needs the folder's llm, flow and hift checkpoints; the tokenizer and voices are used
  // when the folder has them. The folder's family picks the stages (runtime/stages).
  Engine(Backend& backend, const ModelFolder& folder, EngineOptions options = {});
  ~Engine();  // cancels the streams still open, then stops the scheduler
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A new stream. Bad options are an Error; so is a full engine (max_streams open).
  std::shared_ptr<SynthesisStream> open(StreamOptions options, AudioCallback on_audio = {});

  // The folder's spk2info.pt voices usable for zero-shot synthesis, by id.
  // Safe from any thread, alongside set_voice and remove_voice.
  std::shared_ptr<const VoicePrompt> voice(const std::string& id) const;
  std::vector<std::string> voice_ids() const;
  // An Error when the voice's prompt does not fit the model.
  void check_voice(const VoicePrompt& voice) const { flow_->check_voice(voice); }
  // Adds or replaces a voice (checked against the flow); streams already open keep the
  // voice they were given.
  void set_voice(const std::string& id, std::shared_ptr<const VoicePrompt> voice);
  bool remove_voice(const std::string& id);
  // Null when the folder has no tokenizer files.
  const text::TextFrontend* frontend() const { return frontend_ ? &*frontend_ : nullptr; }

  EngineStats stats() const;
  // Switches the scheduling policy from the next step on (a load test compares them on
  // one loaded engine). options().schedule stays what the engine was made with.
  void set_schedule(SchedulePolicy policy) { schedule_ = policy; }
  SchedulePolicy schedule() const { return schedule_.load(); }
  // Writes the engine's trace there from now on (runtime/engine_trace.h); once per engine.
  void set_trace(std::shared_ptr<TraceWriter> writer);
  const EngineOptions& options() const { return options_; }
  ModelFamily family() const { return family_; }
  const SpeechLm& lm() const { return lm_; }
  const FlowStage& flow() const { return *flow_; }
  const VocoderStage& vocoder() const { return *vocoder_; }
  int sample_rate() const { return sample_rate_; }

 private:
  class Scheduler;

  Backend& backend_;
  EngineOptions options_;
  std::atomic<SchedulePolicy> schedule_;
  ModelFamily family_;
  SpeechLm lm_;
  std::unique_ptr<FlowStage> flow_;
  std::unique_ptr<VocoderStage> vocoder_;
  // CosyVoice3 caps runs of silent LM tokens on their way to the flow.
  std::optional<SilentTokenCap::Options> silent_cap_;
  int sample_rate_;
  std::optional<text::TextFrontend> frontend_;
  mutable std::shared_mutex voices_mutex_;
  std::map<std::string, std::shared_ptr<const VoicePrompt>> voices_;
  std::map<std::string, std::string> unusable_voices_;  // id → why
  std::shared_ptr<SchedulerSignal> signal_;
  std::shared_ptr<TraceWriter> trace_writer_;
  std::unique_ptr<class EngineTrace> trace_;
  std::atomic<class EngineTrace*> trace_ptr_{nullptr};  // what the scheduler reads
  std::unique_ptr<Scheduler> scheduler_;
  std::thread thread_;
};

}  // namespace cosy
