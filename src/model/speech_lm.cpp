#include "model/speech_lm.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace cosy {

SpeechLm::Table SpeechLm::table(const StateDict& sd, const std::string& name, int64_t hidden) {
  const Tensor& t = sd.at(name);
  if (t.rank() != 2 || t.dim(1) != hidden)
    fail(sd.label, ": '", name, "' is not [rows, ", hidden, "]");
  Table out;
  out.rows = t.dim(0);
  if (t.dtype() == DType::F32 && t.is_contiguous()) {
    out.t = t;
  } else {
    out.t = Tensor::zeros(DType::F32, {t.dim(0), hidden});
    const auto v = t.to_float_vector();
    std::memcpy(out.t.mutable_data<float>(), v.data(), v.size() * sizeof(float));
  }
  return out;
}

SpeechLm::SpeechLm(Backend& backend, const LlmConfig& config, const StateDict& weights,
                   WeightFormat format)
    : config_(config),
      backbone_(backend, config.qwen, weights, "llm.model.model.", format),
      special_(table(weights, "llm_embedding.weight", config.llm_input_size)),
      text_(table(weights, "llm.model.model.embed_tokens.weight", config.llm_input_size)),
      speech_(table(weights, "speech_embedding.weight", config.llm_input_size)) {
  config_.validate();
  if (config_.llm_input_size != config_.qwen.hidden_size ||
      config_.llm_output_size != config_.qwen.hidden_size) {
    fail("speech LM: llm_input_size ", config_.llm_input_size, " and llm_output_size ",
         config_.llm_output_size, " must equal the Qwen2 hidden size ", config_.qwen.hidden_size);
  }
  if (special_.rows != 2) fail(weights.label, ": llm_embedding must have 2 rows (sos, task_id)");
  if (speech_.rows != vocab().size())
    fail(weights.label, ": speech_embedding has ", speech_.rows, " rows, expected ",
         vocab().size());
  const WeightLoader wl(backend, weights, format);
  decoder_ = load_linear(wl, "llm_decoder", vocab().size(), config_.llm_output_size);
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

void SpeechLm::embed(std::span<const LmInput> inputs, float* out) const {
  check(inputs);
  const int64_t h = hidden();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LmInput& in = inputs[i];
    const float* src = nullptr;
    switch (in.kind) {
      case LmInputKind::Sos:
        src = special_.row(0);
        break;
      case LmInputKind::TaskId:
        src = special_.row(1);
        break;
      case LmInputKind::Text:
        src = text_.row(in.id);
        break;
      case LmInputKind::Speech:
        src = speech_.row(in.id);
        break;
    }
    std::memcpy(out + static_cast<int64_t>(i) * h, src, static_cast<size_t>(h) * sizeof(float));
  }
}

void SpeechLm::logits(Exec& e, const float* hidden, int64_t rows, float* out) const {
  decoder_.run(e, hidden, out, rows);
}

}  // namespace cosy
