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

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "fp32" || s == "f32") return WeightFormat::F32;
  if (s == "fp16" || s == "f16") return WeightFormat::F16;
  if (s == "int8" || s == "i8") return WeightFormat::I8;
  if (s == "bf16") return WeightFormat::BF16;
  if (s == "w8a8") return WeightFormat::W8A8;
  fail("unknown weight format '", s, "' (expected fp32, fp16, int8, bf16 or w8a8)");
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
