// Test voices: a voice's prompt grown or cut to another length (prompt lengths matter to
// the flow's chunk boundaries).
#pragma once

#include <algorithm>
#include <memory>

#include "runtime/voice_prompt.h"

namespace cosy::testing {

// `base` with `length` flow prompt tokens: cut, or grown by repeating its tokens and their
// mel frames (2 per token, `bins` wide). A voice in its own right (no flow_base).
inline std::shared_ptr<VoicePrompt> voice_with_prompt_length(const VoicePrompt& base, size_t length,
                                                             size_t bins) {
  auto v = std::make_shared<VoicePrompt>(base);
  v->flow_base = nullptr;
  v->speech.resize(length);
  v->feat.resize(2 * length * bins);
  for (size_t i = base.speech.size(); i < length; ++i) {
    v->speech[i] = base.speech[i % base.speech.size()];
    std::copy_n(
        base.feat.begin() + static_cast<std::ptrdiff_t>((i % base.speech.size()) * 2 * bins),
        2 * bins, v->feat.begin() + static_cast<std::ptrdiff_t>(i * 2 * bins));
  }
  return v;
}

}  // namespace cosy::testing
