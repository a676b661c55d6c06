// A zero-shot voice: what the official frontend computes from a prompt recording
// (frontend_zero_shot), or what add_zero_shot_spk caches in spk2info.pt. Read-only once
// built, so many streams share one.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/voices.h"

namespace cosy {

struct FlowConfig;

// The official inference modes are views of one voice: they differ only in what the LM sees.
//   zero-shot      LM: prompt transcript + prompt speech   flow: prompt tokens, mel, embedding
//   cross-lingual  LM: nothing                             flow: the same
//   instruct2      LM: instruction + <|endofprompt|>       flow: the same
//   SFT            LM: nothing                             flow: the embedding alone
struct VoicePrompt {
  std::vector<int32_t> text;       // the LM's prompt text ids
  std::vector<int32_t> lm_speech;  // the LM's prompt speech tokens
  std::vector<int32_t> speech;     // the flow's prompt speech tokens
  std::vector<float> feat;         // prompt mel, [token_mel_ratio × speech tokens, mel bins]
  std::vector<float> embedding;    // speaker x-vector
  // The voice this one was derived from (cross_lingual, instruct2), whose flow prompt it
  // shares; null for a voice in its own right. The engine keys its prompt-state cache by
  // flow_identity(), so every mode of a voice reuses one cached state.
  std::shared_ptr<const VoicePrompt> flow_base;

  const VoicePrompt* flow_identity() const { return flow_base ? flow_base.get() : this; }
  // A zero-shot voice (recorded prompt speech); false for an SFT voice.
  bool has_prompt_speech() const { return !speech.empty(); }

  // From a voice of the official spk2info.pt: a zero-shot voice (what add_zero_shot_spk
  // stores), or an SFT voice holding only an `embedding`. An Error says what is missing.
  static VoicePrompt from_voice(const Voice& voice);
  // An Error when the prompt does not fit the flow (model/flow/flow_prompt.h).
  void check(const FlowConfig& flow) const;
};

// frontend_cross_lingual: the LM sees no prompt, the flow keeps the voice's.
std::shared_ptr<const VoicePrompt> cross_lingual(const std::shared_ptr<const VoicePrompt>& voice);
// frontend_instruct2: the instruction's text ids (ending in <|endofprompt|>) in place of the
// transcript, no prompt speech in the LM. Needs a zero-shot voice.
std::shared_ptr<const VoicePrompt> instruct2(const std::shared_ptr<const VoicePrompt>& voice,
                                             std::vector<int32_t> instruction_ids);

}  // namespace cosy
