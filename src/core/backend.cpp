#include "core/backend.h"

#include <stdexcept>
#include <string>

#include "core/error.h"

namespace cosy {

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32:
      return "fp32";
    case WeightFormat::F16:
      return "fp16";
    case WeightFormat::I8:
      return "int8";
    case WeightFormat::BF16:
      return "bf16";
    case WeightFormat::W8A8:
      return "w8a8";
  }
  return "?";
}

const std::vector<WeightFormat>& all_weight_formats() {
  static const std::vector<WeightFormat> formats = {WeightFormat::F32, WeightFormat::F16,
                                                    WeightFormat::I8, WeightFormat::BF16,
                                                    WeightFormat::W8A8};
  return formats;
}

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "f32") return WeightFormat::F32;  // older spellings
  if (s == "f16") return WeightFormat::F16;
  if (s == "i8") return WeightFormat::I8;
  std::string names;
  for (const WeightFormat f : all_weight_formats()) {
    if (s == weight_format_name(f)) return f;
    names += cat(names.empty() ? "" : ", ", weight_format_name(f));
  }
  fail("unknown weight format '", s, "' (expected one of ", names, ")");
}

const char* op_name(Op op) {
  switch (op) {
    case Op::Linear:
      return "linear";
    case Op::Conv1d:
      return "conv1d";
    case Op::ConvTranspose1d:
      return "conv_transpose1d";
    case Op::Activation:
      return "activation";
    case Op::Norm:
      return "norm";
    case Op::Softmax:
      return "softmax";
    case Op::Rope:
      return "rope";
    case Op::Attention:
      return "attention";
    case Op::Stft:
      return "stft";
    case Op::Istft:
      return "istft";
    case Op::Elementwise:
      return "elementwise";
    case Op::Copy:
      return "copy";
  }
  return "?";
}

}  // namespace cosy
