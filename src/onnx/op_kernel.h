// What every ONNX operator implementation provides: output types from input types (checked
// once, when the model loads) and a run over tensors (each call, any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "onnx/attributes.h"

namespace cosy::onnx {

// An operator, opset, attribute value or element type this runtime does not implement.
// The message names the node. Any other Error is a malformed model or bad input.
class Unsupported : public Error {
 public:
  using Error::Error;
};

// An input that was left out (an empty name in the node) has no type.
using InputTypes = std::span<const std::optional<DType>>;

struct RunContext {
  ThreadPool& pool;
};

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // Output element types; throws Unsupported for types the kernel does not handle.
  virtual std::vector<DType> infer_types(InputTypes inputs) const = 0;
  // Inputs are contiguous; an omitted optional input is null. Outputs are assigned.
  virtual void run(RunContext& ctx, std::span<const Tensor* const> inputs,
                   std::span<Tensor> outputs) const = 0;
};

// What a kernel factory sees of its node while the model loads.
class NodeBuild {
 public:
  NodeBuild(std::string op_type, std::string node_name, int64_t opset, Attributes& attrs,
            std::vector<const Tensor*> constant_inputs, size_t num_outputs)
      : op_type_(std::move(op_type)),
        node_name_(std::move(node_name)),
        opset_(opset),
        attrs_(attrs),
        constants_(std::move(constant_inputs)),
        num_outputs_(num_outputs) {}

  const std::string& op_type() const { return op_type_; }
  const std::string& node_name() const { return node_name_; }
  int64_t opset() const { return opset_; }
  Attributes& attrs() { return attrs_; }
  size_t num_inputs() const { return constants_.size(); }
  size_t num_outputs() const { return num_outputs_; }
  bool has_input(size_t i) const { return i < present_.size() ? present_[i] : false; }
  // The value of input i when it is an initializer or a Constant's output, else null.
  const Tensor* constant_input(size_t i) const {
    return i < constants_.size() ? constants_[i] : nullptr;
  }
  void set_present(std::vector<bool> present) { present_ = std::move(present); }

 private:
  std::string op_type_;
  std::string node_name_;
  int64_t opset_;
  Attributes& attrs_;
  std::vector<const Tensor*> constants_;
  std::vector<bool> present_;
  size_t num_outputs_;
};

// Shared helpers for kernels.
[[noreturn]] void unsupported_type(const char* op, DType t);
bool is_float_type(DType t);  // F32, F64
bool is_int_type(DType t);    // I8..I64, U8
// A new contiguous tensor; the bytes are zero.
inline Tensor new_tensor(DType t, Shape s) { return Tensor::zeros(t, std::move(s)); }
// Integer values of a 1-D (or scalar) int64/int32 tensor.
std::vector<int64_t> int_values(const Tensor& t);
// Normalises a possibly negative axis against `rank`; fails naming `what` if out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what);

}  // namespace cosy::onnx
