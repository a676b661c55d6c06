// The speech language model: the Qwen2 stack, the text embeddings (Qwen's embed_tokens),
// the speech-token embeddings and llm_decoder (hidden → logits over the speech ids).
//   CosyVoice2 (cosyvoice.llm.llm.Qwen2LM): llm_embedding holds sos (row 0) and task_id
//   (row 1); the head has 6564 rows with a bias: 6561 speech tokens, EOS 6561, an unused
//   stop id 6562 and the bistream fill token 6563.
//   CosyVoice3 (CosyVoice3LM): no llm_embedding; sos 6561, EOS 6562, task_id 6563 and
//   fill 6564 are speech_embedding rows; the head has 6761 rows and no bias, and every id
//   from 6561 on ends an utterance.
// This holds the weights only (shared, read-only). What to feed and how to sample is the
// runtime's per-stream session; the batched step lives there too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "model/lm/qwen2.h"

namespace cosy {

// One input position of the LM: a special embedding, a text token or a speech token.
enum class LmInputKind : uint8_t { Sos, TaskId, Text, Speech };
struct LmInput {
  LmInputKind kind = LmInputKind::Text;
  int32_t id = 0;  // Text / Speech
  bool operator==(const LmInput&) const = default;
};

// The speech-token ids a session needs, from the model config.
struct SpeechVocab {
  int32_t speech_tokens = 6561;  // valid speech tokens are [0, speech_tokens)
  ModelFamily family = ModelFamily::CosyVoice2;

  bool cosyvoice3() const { return family == ModelFamily::CosyVoice3; }
  int32_t eos() const { return cosyvoice3() ? speech_tokens + 1 : speech_tokens; }
  int32_t fill() const { return cosyvoice3() ? speech_tokens + 3 : speech_tokens + 2; }
  int32_t size() const { return speech_tokens + (cosyvoice3() ? 200 : 3); }  // head width
  // The id the official min-length guard masks (index speech_token_size): EOS in
  // CosyVoice2, but sos in CosyVoice3, whose EOS the official code leaves unguarded.
  int32_t official_min_length_mask() const { return speech_tokens; }
  // Every id past the speech tokens (all of them end an utterance, or are the fill token),
  // except `keep` (-1: none): what a step bans where no stop may come.
  std::vector<int32_t> specials_except(int32_t keep = -1) const {
    std::vector<int32_t> ids;
    for (int32_t id = speech_tokens; id < size(); ++id)
      if (id != keep) ids.push_back(id);
    return ids;
  }
};

class SpeechLm {
 public:
  SpeechLm(Backend& backend, const LlmConfig& config, const StateDict& weights,
           WeightFormat format = WeightFormat::F32);

  const LlmConfig& config() const { return config_; }
  const Qwen2Backbone& backbone() const { return backbone_; }
  SpeechVocab vocab() const {
    return {static_cast<int32_t>(config_.speech_token_size), config_.family};
  }
  int64_t hidden() const { return config_.llm_input_size; }
  int64_t text_vocab() const { return config_.qwen.vocab_size; }

  // Checks that every id is in range; an Error names the first that is not.
  void check(std::span<const LmInput> inputs) const;
  // The embedding rows of `inputs` into `out` ([n, hidden], backend memory).
  void embed(Exec& e, std::span<const LmInput> inputs, float* out) const;
  // llm_decoder over [rows, hidden] → raw logits [rows, vocab().size()].
  void logits(Exec& e, const float* hidden, int64_t rows, float* out) const;

  double decoder_flops(int64_t rows) const { return decoder_.flops(rows); }
  size_t weight_bytes() const { return backbone_.weight_bytes() + decoder_.w->bytes(); }

 private:
  // A float32 [rows, hidden] table in backend memory. On the CPU it is a view of the
  // checkpoint's mapping when stored as contiguous float32 (Qwen's 151 936-row text table
  // is not copied), a converted copy otherwise.
  struct Table {
    ConstArray<float> values;
    int64_t rows = 0;
  };
  static Table table(Backend& backend, const StateDict& sd, const std::string& name,
                     int64_t hidden);

  LlmConfig config_;
  Qwen2Backbone backbone_;
  Table special_, text_, speech_;
  LinearLayer decoder_;
};

}  // namespace cosy
