#include "onnx/op_registry.h"

#include <algorithm>

namespace cosy::onnx {

namespace {
const std::vector<OpSpec>& all_ops() {
  static const std::vector<OpSpec> ops = [] {
    std::vector<OpSpec> v;
    for (auto list : {elementwise_ops(), shape_ops(), reduce_ops(), matmul_ops(), nn_ops()}) {
      v.insert(v.end(), list.begin(), list.end());
    }
    return v;
  }();
  return ops;
}
}  // namespace

const OpSpec* find_op(std::string_view op_type) {
  for (const OpSpec& s : all_ops()) {
    if (op_type == s.op_type) return &s;
  }
  return nullptr;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> names;
  for (const OpSpec& s : all_ops()) names.emplace_back(s.op_type);
  std::sort(names.begin(), names.end());
  return names;
}

void unsupported_type(const char* op, DType t) {
  throw Unsupported(cat(op, " does not support ", dtype_name(t), " tensors"));
}

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F64; }
bool is_int_type(DType t) {
  return t == DType::I8 || t == DType::I16 || t == DType::I32 || t == DType::I64 || t == DType::U8;
}

std::vector<int64_t> int_values(const Tensor& t) {
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32) {
    fail("expected an int64 or int32 tensor, got ", dtype_name(t.dtype()));
  }
  if (t.rank() > 1) fail("expected a 1-D tensor, got shape ", shape_str(t.shape()));
  return t.to_int_vector();
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank) {
    fail(what, " ", axis, " is out of range for rank ", rank);
  }
  return axis < 0 ? axis + rank : axis;
}

}  // namespace cosy::onnx
