// CosyVoice2's speech language model (cosyvoice.llm.llm.Qwen2LM): the Qwen2 stack plus
//   llm_embedding: row 0 = sos, row 1 = task_id;
//   the text embeddings (Qwen's embed_tokens) and the speech-token embeddings;
//   llm_decoder: hidden → 6564 logits (6561 speech tokens, EOS 6561, an unused stop id
//   6562 and the bistream fill token 6563).
// This holds the weights only (shared, read-only). What to feed and how to sample is the
// runtime's per-stream session; the batched step lives there too.
#pragma once

#include <cstdint>
#include <span>

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
  int32_t eos() const { return speech_tokens; }
  int32_t unused_stop() const { return speech_tokens + 1; }
  int32_t fill() const { return speech_tokens + 2; }
  int32_t size() const { return speech_tokens + 3; }  // the decoder's output width
};

class SpeechLm {
 public:
  SpeechLm(Backend& backend, const LlmConfig& config, const StateDict& weights,
           WeightFormat format = WeightFormat::F32);

  const LlmConfig& config() const { return config_; }
  const Qwen2Backbone& backbone() const { return backbone_; }
  SpeechVocab vocab() const { return {static_cast<int32_t>(config_.speech_token_size)}; }
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
