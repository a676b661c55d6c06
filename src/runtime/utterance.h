// One segment's way through the stages, as the scheduler drives it: an LM session (none
// for speech-token input), then the flow (its family's FlowUnit: chunk by chunk when
// streaming, else one full call at the end), then the vocoder's VocoderUnit. Holds only
// this segment's state; the scheduler batches the stages across utterances of all streams.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/lm_decoder.h"
#include "runtime/mel_stretch.h"
#include "runtime/prompt_state_cache.h"
#include "runtime/silent_tokens.h"
#include "runtime/stages/flow_stage.h"
#include "runtime/stages/vocoder_stage.h"
#include "runtime/synthesis_stream.h"

namespace cosy {

class Utterance {
 public:
  // With text ids: the LM runs first (bistream when options.input is IncrementalText).
  // Without (SpeechTokens input): tokens come from push_tokens.
  // `prompt_state` (may be empty, or still computing: the flow then opens once it is
  // ready, see open_flow), `uncond_cache`: see FlowStage::open. `silent_cap`: the family
  // caps runs of silent LM tokens on their way to the flow (CosyVoice3; null: none).
  Utterance(const FlowStage& flow, const VocoderStage& vocoder, const LmSessionLimits& limits,
            const StreamOptions& options, int64_t segment, std::vector<int32_t> text, bool with_lm,
            PendingPromptState prompt_state = {}, UncondFirstPassCache* uncond_cache = nullptr,
            const SilentTokenCap::Options* silent_cap = nullptr);

  // Opens the flow once the voice's prompt state is ready (handing it the tokens that came
  // meanwhile); true when the flow is open. Throws what the state's computation threw.
  bool open_flow();
  // The flow waits for its voice's prompt state (the LM runs meanwhile).
  bool waiting_for_prompt_state() const { return !flow_; }
  bool started_from_prompt_state() const { return flow_ && flow_->started_from_prompt_state(); }
  size_t flow_state_bytes() const { return flow_ ? flow_->state_bytes() : 0; }

  int64_t segment() const { return segment_; }
  LmDecoder* lm() { return lm_ ? lm_.get() : nullptr; }
  // LM tokens emitted since the last call go on to the flow; the LM's end ends the tokens.
  // Returns false when the LM failed (lm()->error() says why).
  bool take_lm_output();
  // Speech-token input.
  void push_tokens(std::span<const int32_t> tokens);
  void end_tokens();

  // Flow stage: the unit can run its next call.
  bool flow_ready() const;
  // The scheduler's view of the next flow call: speech tokens still missing before it can
  // run, and its work in FLOPs (non-streaming: the one full call over what has come); 0
  // while the flow waits for its voice's prompt state.
  int64_t tokens_missing() const;
  double next_flow_flops() const;
  // Where the flow writes its frames: straight into the vocoder's queue, or (at a speed
  // other than 1) into a buffer that flow_ran() stretches into it.
  std::vector<float>& flow_out() { return stretch_ ? flow_mel_ : mel_; }
  // The mel waiting for the vocoder, [frames, bins].
  const std::vector<float>& mel_out() const { return mel_; }
  FlowWork flow_work() { return {flow_.get(), &flow_out()}; }
  void flow_ran();  // after a flow call over this utterance
  // Useful flops of the flow so far (the non-streaming cost of prompt + emitted tokens).
  double flow_flops_done() const;

  // HiFT stage: new mel is waiting, or the end must be flushed.
  bool hift_ready() const;
  VocoderWork hift_step(std::vector<float>& out);  // consumes the waiting mel
  int64_t hift_frames_in_step() const;             // frames the next step vocodes
  bool done() const { return done_; }              // every sample delivered
  void hift_ran(bool finalized);

  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  bool flow_done() const;      // the flow has emitted every frame
  int64_t mel_frames() const;  // frames waiting in mel_

  int64_t mel_bins_;
  const StreamOptions& options_;
  int64_t segment_;
  std::unique_ptr<LmDecoder> lm_;
  size_t lm_taken_ = 0;
  std::optional<SilentTokenCap> silent_cap_;  // on the LM's way to the flow
  std::vector<int32_t> tokens_;               // every speech token of this segment
  bool tokens_ended_ = false;
  const FlowStage& flow_stage_;
  UncondFirstPassCache* uncond_cache_;
  PendingPromptState prompt_state_;
  std::unique_ptr<FlowUnit> flow_;       // null until the voice's prompt state is ready
  std::vector<float> mel_;               // flow output not yet vocoded, [frames, bins]
  std::unique_ptr<MelStretch> stretch_;  // null at speed 1
  std::vector<float> flow_mel_;          // the flow's frames before stretching
  std::unique_ptr<VocoderUnit> hift_;
  int64_t hift_calls_ = 0;
  bool done_ = false;
};

}  // namespace cosy
