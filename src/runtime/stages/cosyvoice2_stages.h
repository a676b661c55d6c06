// CosyVoice2's flow (FlowModel: conformer encoder + causal UNet estimator) and vocoder
// (HiftVocoder: HiFT with the official random source noise) as the engine's stages.
#pragma once

#include "model/flow/flow.h"
#include "model/hift/hift.h"
#include "runtime/stages/flow_stage.h"
#include "runtime/stages/vocoder_stage.h"

namespace cosy {

class Cv2FlowStage final : public FlowStage {
 public:
  Cv2FlowStage(Backend& backend, const FlowConfig& config, const StateDict& weights,
               WeightFormat format);
  const FlowConfig& config() const override { return model_.config(); }
  std::unique_ptr<FlowUnit> open(const VoicePrompt& voice, bool streaming,
                                 const FlowStreamOptions& options,
                                 const FlowStreamState* prompt_state,
                                 UncondFirstPassCache* uncond_cache) const override;
  bool has_prompt_state() const override { return true; }
  std::shared_ptr<const FlowStreamState> prompt_state(const VoicePrompt& voice,
                                                      bool half_state) const override;
  void run(std::span<FlowWork> work) const override;
  const FlowModel& model() const { return model_; }

 private:
  FlowModel model_;
};

class Cv2VocoderStage final : public VocoderStage {
 public:
  Cv2VocoderStage(Backend& backend, const HiftConfig& config, const StateDict& weights,
                  WeightFormat format);
  std::unique_ptr<VocoderUnit> open(uint64_t seed) const override;
  void run(std::span<VocoderWork> work) const override;
  double flops(int64_t frames) const override { return model_.flops(frames); }
  const HiftVocoder& model() const { return model_; }

 private:
  HiftVocoder model_;
};

}  // namespace cosy
