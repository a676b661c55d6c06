// The two ONNX models of a CosyVoice2 folder, loaded unchanged and checked for the inputs
// and outputs the official frontend feeds and reads:
//  - speech_tokenizer_v2.onnx: `feats` float (B, 128, F) + `feats_length` int32 (B,) →
//    speech tokens (B, T) at 25 Hz;
//  - campplus.onnx: `input` float (B, Tf, 80) → a (B, 192) speaker embedding.
// Inputs and outputs are taken by position, as the official code takes them; names may differ.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "model/voice/features.h"
#include "onnx/graph.h"

namespace cosy::voice {

class SpeechTokenizer {
 public:
  // An Error (onnx::Unsupported for operators the runtime lacks) names the file and what
  // is wrong with it.
  explicit SpeechTokenizer(const std::filesystem::path& path);
  int64_t mel_bins() const { return mel_bins_; }
  // Tokens of a whisper log-mel [mel_bins, F].
  std::vector<int32_t> tokens(const Matrix& whisper_mel) const;

 private:
  std::shared_ptr<const onnx::Model> model_;
  int64_t mel_bins_ = 128;
};

class SpeakerEncoder {
 public:
  explicit SpeakerEncoder(const std::filesystem::path& path);
  int64_t fbank_bins() const { return fbank_bins_; }
  // The embedding of mean-normalised fbank features [Tf, fbank_bins].
  std::vector<float> embed(const Matrix& features) const;

 private:
  std::shared_ptr<const onnx::Model> model_;
  int64_t fbank_bins_ = 80;
};

}  // namespace cosy::voice
