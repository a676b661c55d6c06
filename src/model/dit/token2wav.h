// CosyVoice3's speech tokens → audio for one stream, as the official CosyVoice3Model.tts
// schedules it (the reference the engine's incremental paths must reproduce):
//   - a chunk runs once hop + 3 look-ahead tokens are past the emitted ones; the first
//     hop is 25 plus the pad that rounds the prompt up to a multiple of 25, then the hop
//     doubles up to 100;
//   - each chunk runs the flow over every token so far (chunk-causal attention, the last 3
//     as look-ahead) and keeps the new frames; the last runs over all the tokens, full
//     attention, final. Incremental (the default): a chunk computes only its own frames,
//     from the stream's cached keys and values (model/dit/dit_flow.h), with the same
//     output; the final chunk's full attention still recomputes everything;
//   - the vocoder runs over all the mel emitted so far (not final until the last chunk) and
//     the samples past those already sent are the chunk's audio. No cross-fade. Incremental:
//     over the new frames and their receptive field only (model/hift/causal_hift_stream.h),
//     with the same samples.
// Recomputing (the official way) costs the square of the utterance's length; incremental,
// each chunk costs what its own frames cost (the final chunk's full-attention flow call
// aside).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/dit/dit_flow.h"
#include "model/dit/dit_flow_stream.h"
#include "model/hift/causal_hift.h"
#include "model/hift/causal_hift_stream.h"

namespace cosy {

// The schedule and modes are CosyVoice2's (first hop, growth, incremental, the final
// chunk's full attention); half_state keeps the DiT's cached rows in IEEE half.
using Cv3StreamOptions = FlowStreamOptions;

// What one chunk ran, and its audio (the official schedule's columns).
struct Cv3Chunk {
  int64_t flow_tokens = 0;  // tokens the flow call saw (look-ahead included)
  bool final = false;       // the flow ran final with full attention, the vocoder final
  // [frames, bins]: what the flow computed (from flow_first_frame after the prompt's; all
  // of it when recomputing)
  std::vector<float> flow_mel;
  int64_t flow_first_frame = 0;
  int64_t hift_frames = 0;   // mel frames emitted so far (what the official call covers)
  int64_t hift_window = 0;   // mel frames the vocoder actually ran over
  std::vector<float> audio;  // the new samples
};

class Cv3Token2Wav {
 public:
  // The prompt spans must outlive the stream.
  Cv3Token2Wav(const DitFlowModel& flow, const CausalHiftVocoder& hift,
               std::span<const int32_t> prompt_tokens, std::span<const float> prompt_feat,
               std::span<const float> embedding, Cv3StreamOptions options = {});

  void push_tokens(std::span<const int32_t> tokens);
  void finish();       // no more tokens
  bool ready() const;  // a chunk can run now
  bool done() const { return flow_stream_.done(); }
  Cv3Chunk step();  // runs the next chunk; an Error unless ready()

  // The whole utterance in one flow call and one vocoder call (stream=False).
  static std::vector<float> offline(const DitFlowModel& flow, const CausalHiftVocoder& hift,
                                    std::span<const int32_t> prompt_tokens,
                                    std::span<const float> prompt_feat,
                                    std::span<const float> embedding,
                                    std::span<const int32_t> tokens,
                                    std::vector<float>* mel = nullptr);

 private:
  const DitFlowModel& flow_;
  const CausalHiftVocoder& hift_;
  Cv3StreamOptions opt_;
  DitFlowStream flow_stream_;
  std::vector<float> mel_;    // recomputing: every frame emitted so far
  CausalHiftStream vocoder_;  // incremental: the vocoder's window and carried phases
  int64_t tokens_ = 0, samples_sent_ = 0;
  bool finished_ = false;
};

}  // namespace cosy
