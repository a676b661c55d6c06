// CosyVoice3's flow (DitFlowModel: pre-look-ahead layer + DiT estimator) and vocoder
// (CausalHiftVocoder: causal HiFT with fixed source buffers) as the engine's stages.
// Streaming is incremental in both (model/dit/dit_flow_stream.h,
// model/hift/causal_hift_stream.h).
#pragma once

#include "model/dit/dit_flow.h"
#include "model/hift/causal_hift.h"
#include "runtime/stages/flow_stage.h"
#include "runtime/stages/vocoder_stage.h"

namespace cosy {

class Cv3FlowStage final : public FlowStage {
 public:
  Cv3FlowStage(Backend& backend, const FlowConfig& config, const StateDict& weights,
               WeightFormat format);
  const FlowConfig& config() const override { return model_.config(); }
  // No CFG first-pass cache yet: `uncond_cache` is ignored.
  std::unique_ptr<FlowUnit> open(const VoicePrompt& voice, bool streaming,
                                 const FlowStreamOptions& options,
                                 const FlowStreamState* prompt_state,
                                 UncondFirstPassCache* uncond_cache) const override;
  bool has_prompt_state() const override { return true; }
  std::shared_ptr<const FlowStreamState> prompt_state(const VoicePrompt& voice,
                                                      bool half_state) const override;
  void run(std::span<FlowWork> work) const override;
  const DitFlowModel& model() const { return model_; }

 private:
  DitFlowModel model_;
};

class Cv3VocoderStage final : public VocoderStage {
 public:
  Cv3VocoderStage(Backend& backend, const HiftConfig& config, const StateDict& weights,
                  int64_t noise_offset, WeightFormat format);
  std::unique_ptr<VocoderUnit> open(uint64_t seed) const override;
  void run(std::span<VocoderWork> work) const override;
  double flops(int64_t frames) const override { return model_.flops(frames); }
  const CausalHiftVocoder& model() const { return model_; }

 private:
  CausalHiftVocoder model_;
};

}  // namespace cosy
