// The offline pipeline over one loaded model: speech LM → flow → HiFT. The model stages
// are loaded once and shared read-only; every call has its own LM session, KV sequence,
// samplers and generators, so calls from several threads never share state.
// The text frontend (normalise, split, tokenize), streaming audio out and the scheduler
// that batches many streams across stages are not here yet: this takes text token ids.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/flow.h"
#include "model/hift.h"
#include "model/model_folder.h"
#include "model/speech_lm.h"
#include "runtime/lm_session.h"

namespace cosy {

// A zero-shot voice: what the official frontend computes from a prompt recording.
struct VoicePrompt {
  std::vector<int32_t> text;     // prompt transcript, text ids
  std::vector<int32_t> speech;   // prompt speech tokens (LM and flow)
  std::vector<float> feat;       // prompt mel, [2 × speech tokens, mel bins]
  std::vector<float> embedding;  // speaker x-vector
  // From a voice of the official spk2info.pt (add_zero_shot_spk); an Error says which
  // key is missing.
  static VoicePrompt from_voice(const Voice& voice);
};

struct SynthesisRequest {
  std::span<const int32_t> text;  // text ids to speak
  const VoicePrompt* voice = nullptr;
  SamplingParams sampling;
  uint64_t vocoder_seed = 0;  // torch.manual_seed before the HiFT call, as the official code
};

struct Synthesis {
  std::vector<int32_t> tokens;  // speech tokens from the LM
  std::vector<float> mel;       // [frames, mel bins]
  std::vector<float> speech;    // 24 kHz samples in [-0.99, 0.99]
  LmFinish finish = LmFinish::None;
};

class Synthesizer {
 public:
  // Needs the folder's llm, flow and hift checkpoints.
  Synthesizer(Backend& backend, const ModelFolder& folder, WeightFormat format = WeightFormat::F32);

  // Bad requests (no voice, empty text, ids out of range, a voice that does not fit the
  // model) are an Error before anything runs.
  Synthesis synthesize(const SynthesisRequest& request) const;

  const SpeechLm& lm() const { return lm_; }
  const FlowModel& flow() const { return flow_; }
  const HiftVocoder& vocoder() const { return hift_; }

 private:
  Backend& backend_;
  SpeechLm lm_;
  FlowModel flow_;
  HiftVocoder hift_;
};

}  // namespace cosy
