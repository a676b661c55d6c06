#include "runtime/stages/model_stages.h"

#include "runtime/stages/cosyvoice2_stages.h"
#include "runtime/stages/cosyvoice3_stages.h"

namespace cosy {

std::unique_ptr<FlowStage> load_flow_stage(Backend& backend, const ModelFolder& folder,
                                           const FlowConfig& flow, WeightFormat format) {
  if (folder.config.family == ModelFamily::CosyVoice3)
    return std::make_unique<Cv3FlowStage>(backend, flow, folder.flow, format);
  return std::make_unique<Cv2FlowStage>(backend, flow, folder.flow, format);
}

std::unique_ptr<VocoderStage> load_vocoder_stage(Backend& backend, const ModelFolder& folder,
                                                 WeightFormat format) {
  const ModelConfig& c = folder.config;
  if (c.family == ModelFamily::CosyVoice3)
    return std::make_unique<Cv3VocoderStage>(backend, c.hift, folder.hift,
                                             causal_hift_noise_offset(c), format);
  return std::make_unique<Cv2VocoderStage>(backend, c.hift, folder.hift, format);
}

ModelStages load_model_stages(Backend& backend, const ModelFolder& folder, const FlowConfig& flow,
                              WeightFormat flow_weights, WeightFormat vocoder_weights) {
  return {load_flow_stage(backend, folder, flow, flow_weights),
          load_vocoder_stage(backend, folder, vocoder_weights)};
}

}  // namespace cosy
