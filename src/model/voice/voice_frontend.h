// The zero-shot frontend: a prompt recording in, everything a voice needs out, computed as
// the official CosyVoiceFrontEnd does (frontend_zero_shot without the text):
//   load_wav (channel mean, torchaudio resampling to 16 and 24 kHz)
//   → whisper log-mel → speech tokenizer → speech tokens
//   → kaldi fbank − per-bin mean → CAM++ → speaker embedding
//   → prompt mel (the yaml's feat_extractor)
//   → CosyVoice2's alignment: L = min(mel frames / token_mel_ratio, tokens).
// Loads the two ONNX models once; analyze() is const and runs on any thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/voice/features.h"
#include "model/voice/prompt_encoders.h"

namespace cosy::voice {

inline constexpr const char* kSpeechTokenizerFile = "speech_tokenizer_v2.onnx";
// The family's speech tokenizer (CosyVoice3: speech_tokenizer_v3.onnx, with v2's inputs and
// outputs).
inline const char* speech_tokenizer_file(ModelFamily family) {
  return family == ModelFamily::CosyVoice3 ? "speech_tokenizer_v3.onnx" : kSpeechTokenizerFile;
}
inline constexpr const char* kSpeakerEncoderFile = "campplus.onnx";

// Every stage of one prompt's analysis (the fixtures check each).
struct PromptAnalysis {
  int input_rate = 0;
  std::vector<float> wave;      // mono, at the input rate
  std::vector<float> wave16k;   // the tokenizer's and CAM++'s audio
  std::vector<float> wave24k;   // the prompt mel's audio (the model's sample rate)
  Matrix whisper_mel;           // [128, F]
  std::vector<int32_t> tokens;  // [T], before the alignment trim
  Matrix fbank;                 // [Tf, 80]
  Matrix campplus_input;        // fbank minus its per-bin mean
  std::vector<float> embedding;
  Matrix speech_feat;         // [Tm, 80], before the trim
  int64_t prompt_tokens = 0;  // L
  int64_t token_mel_ratio = 2;

  std::vector<int32_t> prompt_speech_token() const;  // tokens[:L]
  Matrix prompt_speech_feat() const;                 // speech_feat[:ratio · L]
};

class VoiceFrontend {
 public:
  // The official limit on a prompt (frontend.py asserts it on the 16 kHz length).
  static constexpr double kMaxPromptSeconds = 30.0;
  static constexpr int kMinSampleRate = 16000;

  // Loads <model_dir>/speech_tokenizer_v2.onnx (CosyVoice3: _v3) and campplus.onnx.
  VoiceFrontend(const std::filesystem::path& model_dir, const ModelConfig& config);

  // A recording's bytes (WAV, FLAC, Ogg/Opus, MP3...). Errors name `label` and say what
  // is wrong: not audio, empty, under 16 kHz, over 30 s, NaN/Inf samples, silent, too short.
  PromptAnalysis analyze(std::span<const std::byte> audio, const std::string& label) const;
  // The same from mono samples already decoded.
  PromptAnalysis analyze_samples(std::vector<float> mono, int sample_rate,
                                 const std::string& label) const;

 private:
  SpeechTokenizer tokenizer_;
  SpeakerEncoder speaker_;
  FeatExtractorConfig mel_;
  int model_rate_;
  int64_t token_mel_ratio_;
};

}  // namespace cosy::voice
