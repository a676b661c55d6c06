#include "model/voice/prompt_encoders.h"

#include <cstring>

#include "core/error.h"

namespace cosy::voice {

namespace {

std::string describe(const onnx::ValueInfo& v) {
  std::string dims = "[";
  for (size_t i = 0; i < v.dims.size(); ++i) {
    if (i > 0) dims += ", ";
    dims += v.dims[i] >= 0 ? std::to_string(v.dims[i])
                           : (v.dim_names[i].empty() ? "?" : v.dim_names[i]);
  }
  return cat("'", v.name, "' ", dtype_name(v.dtype), " ", v.has_shape ? dims + "]" : "(no shape)");
}

void expect_io(const onnx::Model& m, const std::filesystem::path& path, size_t inputs,
               const char* what) {
  if (m.inputs().size() != inputs || m.outputs().empty()) {
    fail(path.string(), ": expected ", what, " with ", inputs,
         " input(s) and an output; the file has ", m.inputs().size(), " input(s) and ",
         m.outputs().size(), " output(s)");
  }
}

void expect_value(const onnx::ValueInfo& v, const std::filesystem::path& path, const char* role,
                  std::initializer_list<DType> types, size_t rank, int64_t fixed_dim,
                  int64_t fixed_value) {
  bool type_ok = false;
  for (DType t : types) type_ok = type_ok || v.dtype == t;
  const bool rank_ok = !v.has_shape || v.dims.size() == rank;
  const bool dim_ok = !v.has_shape || fixed_dim < 0 ||
                      v.dims.size() <= static_cast<size_t>(fixed_dim) || v.dims[fixed_dim] < 0 ||
                      v.dims[fixed_dim] == fixed_value;
  if (!type_ok || !rank_ok || !dim_ok) {
    fail(path.string(), ": its ", role, " is ", describe(v),
         ", not what the frontend feeds or reads");
  }
}

}  // namespace

SpeechTokenizer::SpeechTokenizer(const std::filesystem::path& path)
    : model_(onnx::Model::load(path)) {
  expect_io(*model_, path, 2, "the speech tokenizer (feats, feats_length)");
  const onnx::ValueInfo& feats = model_->inputs()[0];
  expect_value(feats, path, "first input (feats)", {DType::F32}, 3, -1, 0);
  if (feats.has_shape && feats.dims[1] > 0) mel_bins_ = feats.dims[1];
  expect_value(model_->inputs()[1], path, "second input (feats_length)", {DType::I32}, 1, -1, 0);
  const onnx::ValueInfo& out = model_->outputs()[0];
  if (out.dtype != DType::I32 && out.dtype != DType::I64) {
    fail(path.string(), ": its output is ", describe(out), ", not integer speech tokens");
  }
}

std::vector<int32_t> SpeechTokenizer::tokens(const Matrix& mel) const {
  if (mel.rows != mel_bins_)
    fail("speech tokenizer: ", mel.rows, " mel bins given, the model takes ", mel_bins_);
  Tensor feats = Tensor::zeros(DType::F32, {1, mel.rows, mel.cols});
  std::memcpy(feats.mutable_raw(), mel.data.data(), mel.data.size() * sizeof(float));
  Tensor length = Tensor::zeros(DType::I32, {1});
  length.mutable_data<int32_t>()[0] = static_cast<int32_t>(mel.cols);
  std::vector<Tensor> out = model_->run(std::vector<Tensor>{feats, length});
  std::vector<int64_t> ids = out[0].to_int_vector();
  std::vector<int32_t> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id > INT32_MAX) fail("speech tokenizer: token ", id, " is out of range");
    tokens.push_back(static_cast<int32_t>(id));
  }
  return tokens;
}

SpeakerEncoder::SpeakerEncoder(const std::filesystem::path& path)
    : model_(onnx::Model::load(path)) {
  expect_io(*model_, path, 1, "the speaker encoder (fbank features)");
  const onnx::ValueInfo& in = model_->inputs()[0];
  expect_value(in, path, "input", {DType::F32}, 3, -1, 0);
  if (in.has_shape && in.dims[2] > 0) fbank_bins_ = in.dims[2];
  expect_value(model_->outputs()[0], path, "output", {DType::F32}, 2, -1, 0);
}

std::vector<float> SpeakerEncoder::embed(const Matrix& features) const {
  if (features.cols != fbank_bins_)
    fail("speaker encoder: ", features.cols, " fbank bins given, the model takes ", fbank_bins_);
  Tensor input = Tensor::zeros(DType::F32, {1, features.rows, features.cols});
  std::memcpy(input.mutable_raw(), features.data.data(), features.data.size() * sizeof(float));
  std::vector<Tensor> out = model_->run(std::vector<Tensor>{input});
  return out[0].to_float_vector();
}

}  // namespace cosy::voice
