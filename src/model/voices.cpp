#include "model/voices.h"

#include <algorithm>

#include "core/error.h"
#include "io/torch_checkpoint.h"
#include "io/zip_verify.h"

namespace cosy {

const std::vector<std::string>& known_voice_keys() {
  static const std::vector<std::string> keys = {"prompt_text",
                                                "prompt_text_len",
                                                "llm_prompt_speech_token",
                                                "llm_prompt_speech_token_len",
                                                "flow_prompt_speech_token",
                                                "flow_prompt_speech_token_len",
                                                "prompt_speech_feat",
                                                "prompt_speech_feat_len",
                                                "llm_embedding",
                                                "flow_embedding",
                                                "embedding"};
  return keys;
}

const Tensor* Voice::find(const std::string& key) const {
  auto it = tensors.find(key);
  return it == tensors.end() ? nullptr : &it->second;
}

bool Voice::is_zero_shot() const {
  for (const char* k : {"prompt_text", "llm_prompt_speech_token", "flow_prompt_speech_token",
                        "prompt_speech_feat", "llm_embedding", "flow_embedding"}) {
    if (!has(k)) return false;
  }
  return true;
}

const Voice* VoiceBank::find(const std::string& id) const {
  for (const auto& v : voices) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

namespace {

void check_voice(const Voice& v, const ModelConfig& config) {
  auto bad = [&](const std::string& key, const std::string& what) {
    fail("voice '", v.id, "': '", key, "' ", what);
  };
  for (const char* key : {"llm_embedding", "flow_embedding", "embedding"}) {
    const Tensor* t = v.find(key);
    if (t == nullptr) continue;
    if (t->rank() == 0 || t->shape().back() != config.flow.spk_embed_dim ||
        t->numel() != config.flow.spk_embed_dim) {
      bad(key, cat("has shape ", shape_str(t->shape()), ", expected [1, ",
                   config.flow.spk_embed_dim, "]"));
    }
    if (!is_floating(t->dtype())) bad(key, "must be a float tensor");
  }
  if (const Tensor* feat = v.find("prompt_speech_feat")) {
    if (feat->rank() != 3 || feat->dim(0) != 1 || feat->dim(2) != config.flow.output_size) {
      bad("prompt_speech_feat", cat("has shape ", shape_str(feat->shape()), ", expected [1, T, ",
                                    config.flow.output_size, "]"));
    }
  }
  // Token and text id sequences are [1, N] integers, and each *_len holds N.
  for (const char* key : {"prompt_text", "llm_prompt_speech_token", "flow_prompt_speech_token",
                          "prompt_speech_feat"}) {
    const Tensor* t = v.find(key);
    if (t == nullptr) continue;
    const bool is_feat = std::string(key) == "prompt_speech_feat";
    if (!is_feat && (t->rank() != 2 || t->dim(0) != 1 || is_floating(t->dtype()))) {
      bad(key, cat("has shape ", shape_str(t->shape()), " of ", dtype_name(t->dtype()),
                   ", expected [1, N] integers"));
    }
    const Tensor* len = v.find(std::string(key) + "_len");
    if (len == nullptr) continue;
    if (len->numel() != 1 || is_floating(len->dtype()))
      bad(std::string(key) + "_len", "must hold one integer");
    if (len->to_int_vector()[0] != t->dim(1)) {
      bad(std::string(key) + "_len",
          cat("says ", len->to_int_vector()[0], " but '", key, "' holds ", t->dim(1)));
    }
  }
  for (const char* key : {"llm_prompt_speech_token", "flow_prompt_speech_token"}) {
    const Tensor* t = v.find(key);
    if (t == nullptr) continue;
    for (int64_t id : t->to_int_vector()) {
      if (id < 0 || id >= config.llm.speech_token_size)
        bad(key,
            cat("holds speech token ", id, " outside [0, ", config.llm.speech_token_size, ")"));
    }
  }
  if (const Tensor* t = v.find("prompt_text")) {
    for (int64_t id : t->to_int_vector()) {
      if (id < 0 || id >= config.llm.qwen.vocab_size)
        bad("prompt_text", cat("holds text id ", id, " outside the vocabulary"));
    }
  }
}

}  // namespace

VoiceBank load_voices(const std::filesystem::path& path, const ModelConfig& config) {
  TorchFile file = TorchFile::open(path);
  verify_zip_entries({file.archive()}, ThreadPool::global());  // small: checked at once
  const pickle::Value* root = file.root();
  if (!root->is(pickle::Kind::Dict)) fail(path.string(), ": top level is not a dict of voices");
  VoiceBank bank;
  for (const auto& [key, value] : root->entries) {
    if (!key->is(pickle::Kind::String)) fail(path.string(), ": voice id is not a string");
    if (!value->is(pickle::Kind::Dict))
      fail(path.string(), ": voice '", key->text, "' is not a dict");
    Voice v;
    v.id = key->text;
    for (const auto& [k, t] : value->entries) {
      if (!k->is(pickle::Kind::String))
        fail(path.string(), ": voice '", v.id, "' has a non-string key");
      if (!t->is(pickle::Kind::Tensor)) {
        fail(path.string(), ": voice '", v.id, "': '", k->text, "' is a ",
             pickle::kind_name(t->kind), ", expected a tensor");
      }
      v.tensors.emplace(k->text, file.tensor(t->tensor));
    }
    with_context(path.string(), [&] { check_voice(v, config); });
    bank.voices.push_back(std::move(v));
  }
  return bank;
}

void save_voices(const std::filesystem::path& path, const VoiceBank& bank) {
  SaveNode::Entries root;
  for (const Voice& v : bank.voices) {
    SaveNode::Entries entries;
    for (const std::string& key : known_voice_keys()) {
      if (const Tensor* t = v.find(key)) entries.push_back({key, SaveNode::tensor(*t)});
    }
    for (const auto& [key, t] : v.tensors) {
      const auto& known = known_voice_keys();
      if (std::find(known.begin(), known.end(), key) == known.end())
        entries.push_back({key, SaveNode::tensor(t)});
    }
    root.push_back({v.id, SaveNode::dict(std::move(entries))});
  }
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  save_torch_file(tmp, path.stem().string(), SaveNode::dict(std::move(root)));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail(path.string(), ": cannot replace the voice file: ", ec.message());
  }
}

}  // namespace cosy
