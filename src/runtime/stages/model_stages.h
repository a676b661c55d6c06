// The flow and vocoder stages of a model folder's family (CosyVoice2 or CosyVoice3).
#pragma once

#include <memory>

#include "model/model_folder.h"
#include "runtime/stages/flow_stage.h"
#include "runtime/stages/vocoder_stage.h"

namespace cosy {

struct ModelStages {
  std::unique_ptr<FlowStage> flow;
  std::unique_ptr<VocoderStage> vocoder;
};

// `flow` is the folder's flow config with the engine's overrides (its left chunks).
std::unique_ptr<FlowStage> load_flow_stage(Backend& backend, const ModelFolder& folder,
                                           const FlowConfig& flow, WeightFormat format);
std::unique_ptr<VocoderStage> load_vocoder_stage(Backend& backend, const ModelFolder& folder,
                                                 WeightFormat format);
ModelStages load_model_stages(Backend& backend, const ModelFolder& folder, const FlowConfig& flow,
                              WeightFormat flow_weights, WeightFormat vocoder_weights);

}  // namespace cosy
