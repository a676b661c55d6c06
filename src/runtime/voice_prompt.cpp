#include "runtime/voice_prompt.h"

#include "core/error.h"
#include "model/flow.h"

namespace cosy {
namespace {

const Tensor& voice_tensor(const Voice& v, const std::string& key) {
  const Tensor* t = v.find(key);
  if (t == nullptr) fail("voice '", v.id, "' has no '", key, "' (not a zero-shot voice)");
  return *t;
}

std::vector<int32_t> int32s(const Tensor& t) {
  const auto v = t.to_int_vector();
  return {v.begin(), v.end()};
}

}  // namespace

VoicePrompt VoicePrompt::from_voice(const Voice& voice) {
  VoicePrompt p;
  p.text = int32s(voice_tensor(voice, "prompt_text"));
  p.speech = int32s(voice_tensor(voice, "flow_prompt_speech_token"));
  p.feat = voice_tensor(voice, "prompt_speech_feat").to_float_vector();
  p.embedding = voice_tensor(voice, "flow_embedding").to_float_vector();
  return p;
}

void VoicePrompt::check(const FlowModel& flow) const {
  try {
    flow.check_prompt(speech, feat, embedding);
  } catch (const Error& e) {
    fail("voice: ", e.what());
  }
}

}  // namespace cosy
