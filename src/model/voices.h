// The official voice cache, spk2info.pt: voice id → tensors written by add_zero_shot_spk
// (or only `embedding` for the SFT voices of earlier releases).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace cosy {

struct Voice {
  std::string id;
  std::map<std::string, Tensor> tensors;  // by key, e.g. "llm_prompt_speech_token"

  const Tensor* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Holds everything zero-shot prompting needs (prompt text, tokens, mel, embeddings).
  bool is_zero_shot() const;
};

struct VoiceBank {
  std::vector<Voice> voices;  // in file order
  const Voice* find(const std::string& id) const;
};

// The keys the official code writes, in its order.
const std::vector<std::string>& known_voice_keys();

// Loads and checks spk2info.pt against the model config (embedding and mel sizes,
// *_len values against their tensors). Errors name the file, the voice and the key.
VoiceBank load_voices(const std::filesystem::path& path, const ModelConfig& config);

// Writes `bank` as the official toolkit's save_spkinfo() does (torch.save of a dict of
// dicts, keys in the official order), so torch.load and the official toolkit read it.
// The file is written beside `path` and renamed over it, so a reader never sees half of it.
void save_voices(const std::filesystem::path& path, const VoiceBank& bank);

}  // namespace cosy
