#include "runtime/voice_prompt.h"

#include "core/error.h"
#include "model/flow/flow_prompt.h"

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
  if (!voice.is_zero_shot() && voice.has("embedding")) {  // frontend_sft
    p.embedding = voice_tensor(voice, "embedding").to_float_vector();
    return p;
  }
  p.text = int32s(voice_tensor(voice, "prompt_text"));
  p.speech = int32s(voice_tensor(voice, "flow_prompt_speech_token"));
  p.lm_speech = int32s(voice_tensor(voice, "llm_prompt_speech_token"));
  p.feat = voice_tensor(voice, "prompt_speech_feat").to_float_vector();
  p.embedding = voice_tensor(voice, "flow_embedding").to_float_vector();
  return p;
}

namespace {

std::shared_ptr<VoicePrompt> derived(const std::shared_ptr<const VoicePrompt>& voice) {
  if (!voice) fail("no voice given");
  auto p = std::make_shared<VoicePrompt>();
  p->speech = voice->speech;
  p->feat = voice->feat;
  p->embedding = voice->embedding;
  p->flow_base = voice->flow_base ? voice->flow_base : voice;
  return p;
}

}  // namespace

std::shared_ptr<const VoicePrompt> cross_lingual(const std::shared_ptr<const VoicePrompt>& voice) {
  return derived(voice);
}

std::shared_ptr<const VoicePrompt> instruct2(const std::shared_ptr<const VoicePrompt>& voice,
                                             std::vector<int32_t> instruction_ids) {
  if (voice && !voice->has_prompt_speech()) {
    fail(
        "instructions need a voice made from a recording (instruct2 keeps its prompt speech); this "
        "voice holds only a speaker embedding");
  }
  if (instruction_ids.empty()) fail("the instruction is empty");
  auto p = derived(voice);
  p->text = std::move(instruction_ids);
  return p;
}

void VoicePrompt::check(const FlowConfig& flow) const {
  try {
    check_flow_prompt(flow, speech, feat, embedding);
  } catch (const Error& e) {
    fail("voice: ", e.what());
  }
}

}  // namespace cosy
