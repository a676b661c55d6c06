// The checks a voice's flow prompt must pass for either flow family: the prompt mel holds
// token_mel_ratio frames per prompt token of the model's bins, the speaker embedding has
// the model's size, and both are finite. An Error says which part is wrong.
#pragma once

#include <cstdint>
#include <span>

#include "model/config.h"

namespace cosy {

void check_flow_prompt(const FlowConfig& config, std::span<const int32_t> prompt_tokens,
                       std::span<const float> prompt_feat, std::span<const float> embedding);

}  // namespace cosy
