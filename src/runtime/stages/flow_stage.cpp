#include "runtime/stages/flow_stage.h"

#include "runtime/voice_prompt.h"

namespace cosy {

void FlowStage::check_voice(const VoicePrompt& voice) const { voice.check(config()); }

std::shared_ptr<const FlowStreamState> FlowStage::prompt_state(const VoicePrompt& /*voice*/,
                                                               bool /*half_state*/) const {
  return nullptr;
}

}  // namespace cosy
