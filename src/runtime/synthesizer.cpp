#include "runtime/synthesizer.h"

#include "core/error.h"
#include "core/torch_generator.h"
#include "runtime/lm_runner.h"

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

Synthesizer::Synthesizer(Backend& backend, const ModelFolder& folder, WeightFormat format)
    : backend_(backend),
      lm_(backend, folder.config.llm, folder.llm, format),
      flow_(backend, folder.config.flow, folder.flow, format),
      hift_(backend, folder.config.hift, folder.hift, format) {}

Synthesis Synthesizer::synthesize(const SynthesisRequest& request) const {
  if (request.voice == nullptr) fail("synthesize: no voice");
  const VoicePrompt& voice = *request.voice;
  const int64_t bins = flow_.mel_bins();
  if (static_cast<int64_t>(voice.feat.size()) !=
      static_cast<int64_t>(voice.speech.size()) * flow_.config().token_mel_ratio * bins) {
    fail("voice: the prompt mel has ", voice.feat.size() / static_cast<size_t>(bins),
         " frames for ", voice.speech.size(), " prompt speech tokens (expected ",
         flow_.config().token_mel_ratio, " per token)");
  }
  LmSessionOptions o;
  o.prompt_text = voice.text;
  o.prompt_speech = voice.speech;
  o.text.assign(request.text.begin(), request.text.end());
  o.sampling = request.sampling;
  LmSession session(LmSessionLimits::of(lm_), std::move(o));

  // The pool holds exactly this stream's longest possible sequence.
  const int64_t positions = static_cast<int64_t>(session.pending().size()) +
                            static_cast<int64_t>(static_cast<double>(request.text.size()) * 20) + 1;
  LmRunner runner(backend_, lm_, {(positions + 15) / 16, 16});
  LmSession* one[] = {&session};
  while (!session.finished()) runner.step(one);
  if (session.finish_reason() == LmFinish::Error) fail("speech LM: ", session.error());

  Synthesis out;
  out.tokens = session.tokens();
  out.finish = session.finish_reason();
  if (out.tokens.empty()) return out;  // the LM ended at once: no speech

  FlowRequest fr;
  fr.prompt_tokens = voice.speech;
  fr.tokens = out.tokens;
  fr.prompt_feat = voice.feat;
  fr.embedding = voice.embedding;
  fr.mel = &out.mel;
  flow_.infer({&fr, 1});

  TorchGenerator rng(request.vocoder_seed);
  out.speech = hift_.vocode(out.mel, static_cast<int64_t>(out.mel.size()) / bins, rng);
  return out;
}

}  // namespace cosy
