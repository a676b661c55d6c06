// A zero-shot voice: what the official frontend computes from a prompt recording
// (frontend_zero_shot), or what add_zero_shot_spk caches in spk2info.pt. Read-only once
// built, so many streams share one.
#pragma once

#include <cstdint>
#include <vector>

#include "model/voices.h"

namespace cosy {

class FlowModel;

struct VoicePrompt {
  std::vector<int32_t> text;     // prompt transcript, text ids
  std::vector<int32_t> speech;   // prompt speech tokens (LM and flow)
  std::vector<float> feat;       // prompt mel, [token_mel_ratio × speech tokens, mel bins]
  std::vector<float> embedding;  // speaker x-vector

  // From a voice of the official spk2info.pt; an Error says which key is missing (the SFT
  // voices of earlier releases hold only an embedding).
  static VoicePrompt from_voice(const Voice& voice);
  // An Error when the prompt does not fit the flow (FlowModel::check_prompt).
  void check(const FlowModel& flow) const;
};

}  // namespace cosy
