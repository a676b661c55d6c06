// Streaming token → mel as CosyVoice2Model.tts schedules it, one object per stream:
//   - a chunk runs once hop + pre_lookahead_len tokens past the emitted ones are there; the
//     first hop is padded so prompt + chunk end on a whole encoder chunk;
//   - the hop grows ×scale up to max_hop after each chunk;
//   - when the tokens end, one final chunk takes the rest (finalize: zeros for look-ahead).
// The schedule is per stream (the official code grows token_hop_len on the shared model
// and never resets it; here nothing is shared between streams).
//
// Two ways to compute a chunk, with the same output:
//   - Recompute: the official way, the whole prefix again at every chunk (quadratic);
//   - Incremental: a FlowStreamState keeps what complete chunks leave for later ones, so a
//     chunk costs its own frames plus attention over the cached left context.
// The official final chunk runs the flow with full attention (streaming=False), which no
// cache can serve: `final_full_attention` (the default) reproduces it by recomputing the
// whole utterance once; turning it off keeps the final chunk chunk-causal and incremental,
// which changes the last chunk's output from the official one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/flow/flow.h"
#include "model/flow/flow_state.h"
#include "model/flow/hop_schedule.h"

namespace cosy {

struct FlowStreamOptions {
  int64_t first_hop = 25;  // tokens; 15 is a common lower-latency choice
  int64_t max_hop = 100;
  int64_t hop_scale = 2;
  bool incremental = true;
  bool final_full_attention = true;  // official; false changes the last chunk's output
  // Incremental only: keep the estimator's cached attention rows in IEEE half precision,
  // half the state memory; changes the output slightly from the official one.
  bool half_state = false;
  void validate() const;
};

class FlowStream {
 public:
  // The prompt spans must outlive the stream (a voice's prompt is shared, read-only).
  // `prompt_state` (incremental only): FlowModel::prompt_state of this prompt, so the
  // prompt's complete chunks are not computed again; the output is the same.
  // `uncond_cache` (incremental only, may be null): serves the CFG half's first Euler pass
  // of the stream's first chunk, or keeps it for later streams; the output is the same.
  FlowStream(const FlowModel& flow, std::span<const int32_t> prompt_tokens,
             std::span<const float> prompt_feat, std::span<const float> embedding,
             FlowStreamOptions options = {}, const FlowStreamState* prompt_state = nullptr,
             UncondFirstPassCache* uncond_cache = nullptr);

  void push_tokens(std::span<const int32_t> tokens);
  void finish();  // no more tokens will come

  // Whether a chunk can run now (enough tokens past the emitted ones, or the end reached
  // with tokens left), and whether the stream has emitted everything.
  bool ready() const { return schedule_.ready(); }
  bool done() const { return schedule_.done(); }
  int64_t emitted_tokens() const { return schedule_.emitted(); }
  // Tokens still to come before the next chunk can run (0 when ready or finished), and the
  // tokens that chunk will emit (the schedulers' cost estimates).
  int64_t tokens_missing() const { return schedule_.tokens_missing(); }
  int64_t next_chunk_tokens() const { return schedule_.next_chunk_tokens(); }
  // The work of the next flow call (FlowModel::flops of its tokens, cached past and
  // attention), as it would run once ready: a final chunk with full attention recomputes
  // the whole utterance.
  double next_call_flops() const;
  int64_t hop() const { return schedule_.hop(); }
  const FlowStreamState& state() const { return state_; }
  // The flow calls run so far (model/flow/hop_schedule.h).
  using Call = FlowCall;
  const std::vector<Call>& calls() const { return calls_; }

  // Runs the next chunk of every ready stream in one batched flow call; appends each
  // stream's new mel frames ([frames, bins]) to its `out`. Streams not ready are skipped.
  struct Step {
    FlowStream* stream = nullptr;
    std::vector<float>* out = nullptr;
    FlowTrace* trace = nullptr;  // optional
  };
  static void step(const FlowModel& flow, std::span<Step> steps);

 private:
  const FlowModel& flow_;
  std::span<const int32_t> prompt_tokens_;
  std::span<const float> prompt_feat_, embedding_;
  FlowStreamOptions options_;
  HopSchedule schedule_;
  FlowStreamState state_;
  UncondFirstPassCache* uncond_cache_;
  std::vector<Call> calls_;
};

}  // namespace cosy
