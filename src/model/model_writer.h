// Writes a complete model folder in the official CosyVoice2 layout with random weights:
// the yaml, the Qwen config, torch.save-compatible llm.pt / flow.pt / hift.pt and a voice
// cache. Benchmarks, load tests and the demo use these folders; random weights make noise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"

namespace cosy {

// "tiny" (tests, demos) or "cosyvoice2-0.5b" (the released model's dimensions).
ModelConfig preset_config(const std::string& preset);
std::vector<std::string> preset_names();

// cosyvoice2.yaml text in the released file's structure (tags, !ref, sections).
std::string model_yaml(const ModelConfig& c);
// CosyVoice-BlankEN/config.json text.
std::string qwen_config_json(const QwenConfig& q);

struct WriteModelOptions {
  uint64_t seed = 0;
  // Tokenizer files (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json) to copy
  // into CosyVoice-BlankEN/; empty writes the starter tokenizer (text/starter_tokenizer.h),
  // so that the folder works alone.
  std::filesystem::path tokenizer_dir;
  bool voices = true;
  // The zero-shot frontend's ONNX models (speech_tokenizer_v2.onnx, campplus.onnx), with
  // random weights: none, small ones, or the released sizes (model/voice/frontend_models.h).
  enum class Frontend { None, Tiny, Released };
  Frontend frontend = Frontend::Tiny;
  // Loop: an LM biased to the quality guard's hazards (tests, demos): each speech token's
  // successor is predictable, some tokens follow themselves (one sound held) and the rest
  // cycle in groups of 2 to 12 (loops), with about 10 % of the mass elsewhere.
  // Fp16: weights with the reduced-precision hazards `cosyserve audit` looks for: Snake
  // alphas whose reciprocal overflows fp16, and an LM layer whose q and k projections allow
  // attention logits beyond fp16's range.
  enum class Hazard { None, Loop, Fp16 };
  Hazard hazard = Hazard::None;
};
WriteModelOptions::Hazard parse_hazard(const std::string& name);  // none | loop | fp16

// Writes the folder (created if needed; existing model files are replaced).
void write_model_folder(const ModelConfig& c, const std::filesystem::path& out,
                        const WriteModelOptions& options);

}  // namespace cosy
