#include "model/lm/speech_lm.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace cosy {

SpeechLm::Table SpeechLm::table(Backend& backend, const StateDict& sd, const std::string& name,
                                int64_t hidden) {
  const Tensor& t = sd.at(name);
  if (t.rank() != 2 || t.dim(1) != hidden)
    fail(sd.label, ": '", name, "' is not [rows, ", hidden, "]");
  Table out;
  out.rows = t.dim(0);
  if (t.dtype() == DType::F32 && t.is_contiguous()) {
    auto keep = std::make_shared<const Tensor>(t);  // keeps the mapping alive
    out.values = ConstArray<float>::view(backend, t.data<float>(), static_cast<size_t>(t.numel()),
                                         std::move(keep));
  } else {
    out.values = ConstArray<float>::upload(backend, t.to_float_vector());
  }
  return out;
}

SpeechLm::SpeechLm(Backend& backend, const LlmConfig& config, const StateDict& weights,
                   WeightFormat format)
    : config_(config),
      backbone_(backend, config.qwen, weights, "llm.model.model.", format),
      text_(table(backend, weights, "llm.model.model.embed_tokens.weight", config.llm_input_size)),
      speech_(table(backend, weights, "speech_embedding.weight", config.llm_input_size)) {
  config_.validate();
  if (config_.llm_input_size != config_.qwen.hidden_size ||
      config_.llm_output_size != config_.qwen.hidden_size) {
    fail("speech LM: llm_input_size ", config_.llm_input_size, " and llm_output_size ",
         config_.llm_output_size, " must equal the Qwen2 hidden size ", config_.qwen.hidden_size);
  }
  if (config_.family == ModelFamily::CosyVoice2) {
    special_ = table(backend, weights, "llm_embedding.weight", config.llm_input_size);
    if (special_.rows != 2) fail(weights.label, ": llm_embedding must have 2 rows (sos, task_id)");
  }
  if (speech_.rows != vocab().size())
    fail(weights.label, ": speech_embedding has ", speech_.rows, " rows, expected ",
         vocab().size());
  const WeightLoader wl(backend, weights, format);
  decoder_ = load_linear(wl, "llm_decoder", vocab().size(), config_.llm_output_size,
                         config_.decoder_bias());
}

void SpeechLm::check(std::span<const LmInput> inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LmInput& in = inputs[i];
    if (in.kind == LmInputKind::Text && (in.id < 0 || in.id >= text_.rows)) {
      fail("text token ", in.id, " at position ", i, " is outside the text vocabulary [0, ",
           text_.rows, ")");
    }
    if (in.kind == LmInputKind::Speech && (in.id < 0 || in.id >= speech_.rows)) {
      fail("speech token ", in.id, " at position ", i, " is outside [0, ", speech_.rows, ")");
    }
  }
}

void SpeechLm::embed(Exec& e, std::span<const LmInput> inputs, float* out) const {
  check(inputs);
  const int64_t h = hidden();
  // One gather per run of inputs from the same table.
  std::vector<int32_t> ids;
  size_t begin = 0;
  while (begin < inputs.size()) {
    const Table* table = nullptr;
    size_t end = begin;
    ids.clear();
    for (; end < inputs.size(); ++end) {
      const LmInput& in = inputs[end];
      const Table* t = nullptr;
      int32_t id = 0;
      const bool cv3 = config_.family == ModelFamily::CosyVoice3;
      const auto speech_ids = static_cast<int32_t>(config_.speech_token_size);
      switch (in.kind) {
        case LmInputKind::Sos:  // CosyVoice3: speech_embedding row 6561
          t = cv3 ? &speech_ : &special_;
          id = cv3 ? speech_ids : 0;
          break;
        case LmInputKind::TaskId:  // CosyVoice3: speech_embedding row 6563
          t = cv3 ? &speech_ : &special_;
          id = cv3 ? speech_ids + 2 : 1;
          break;
        case LmInputKind::Text:
          t = &text_;
          id = in.id;
          break;
        case LmInputKind::Speech:
          t = &speech_;
          id = in.id;
          break;
      }
      if (table != nullptr && t != table) break;
      table = t;
      ids.push_back(id);
    }
    e.k.gather_rows(e.s, table->values.data(), h, ids.data(), static_cast<int64_t>(ids.size()),
                    out + static_cast<int64_t>(begin) * h);
    begin = end;
  }
}

void SpeechLm::logits(Exec& e, const float* hidden, int64_t rows, float* out) const {
  decoder_.run(e, hidden, out, rows);
}

}  // namespace cosy
