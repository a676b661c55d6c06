// Streaming token → mel for CosyVoice3, one object per stream, on the schedule the official
// CosyVoice3Model.tts uses (CosyVoice2's: model/flow/hop_schedule.h).
//   - Recompute (the official way): every chunk runs the DiT over the whole prefix.
//   - Incremental: the stream's FlowStreamState keeps each Euler step's and CFG half's
//     keys and values of complete chunks, so a chunk computes only its own frames, with the
//     same output (model/dit/dit_flow.h).
// The official final chunk attends to the whole utterance (full attention), which no cache
// can serve; `final_full_attention` = false keeps it chunk-causal and incremental, which
// changes its frames from the official ones.
// Many streams' chunks run in one batched DitFlowModel call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/dit/dit_flow.h"
#include "model/flow/flow_state.h"
#include "model/flow/flow_stream.h"  // FlowStreamOptions
#include "model/flow/hop_schedule.h"

namespace cosy {

class DitFlowStream {
 public:
  // The prompt spans must outlive the stream. `prompt_state` (incremental only):
  // DitFlowModel::prompt_state of this prompt, so its complete chunks are not computed
  // again; the output is the same.
  DitFlowStream(const DitFlowModel& flow, std::span<const int32_t> prompt_tokens,
                std::span<const float> prompt_feat, std::span<const float> embedding,
                FlowStreamOptions options = {}, const FlowStreamState* prompt_state = nullptr);

  void push_tokens(std::span<const int32_t> tokens);
  void finish();  // no more tokens will come

  bool ready() const { return schedule_.ready(); }  // a chunk can run now
  bool done() const { return schedule_.done(); }
  int64_t emitted_tokens() const { return schedule_.emitted(); }
  // Tokens still to come before the next chunk can run (0 when ready or finished).
  int64_t tokens_missing() const { return schedule_.tokens_missing(); }
  // The next call's work (DitFlowModel::flops), as step() will run it.
  double next_call_flops() const;
  const FlowStreamState& state() const { return state_; }
  bool incremental() const { return options_.incremental; }

  struct Step {
    DitFlowStream* stream = nullptr;
    std::vector<float>* out = nullptr;  // the chunk's new frames are appended, [frames, bins]
    // Optional: what the flow computed (from *first_frame after the prompt's), for tests
    // and the reference schedule.
    std::vector<float>* computed = nullptr;
    int64_t* first_frame = nullptr;
  };
  // Runs the next chunk of every ready stream in one batched flow call; streams not ready
  // are skipped.
  static void step(const DitFlowModel& flow, std::span<Step> steps);

 private:
  const DitFlowModel& flow_;
  std::span<const int32_t> prompt_tokens_;
  std::span<const float> prompt_feat_, embedding_;
  FlowStreamOptions options_;
  HopSchedule schedule_;
  FlowStreamState state_;
};

}  // namespace cosy
