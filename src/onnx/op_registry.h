// The operators the runtime implements, by ONNX op_type (default domain only).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "onnx/op_kernel.h"

namespace cosy::onnx {

using KernelFactory = std::unique_ptr<OpKernel> (*)(NodeBuild& node);

struct OpSpec {
  const char* op_type;
  // The operator's version in opset 13 (ONNX's since_version). A model importing an older
  // opset runs the node only if it selects this same version; newer opsets up to
  // kMaxOpset are handled by the kernels, which read NodeBuild::opset().
  int64_t since_version;
  KernelFactory make;
  int min_inputs;
  int max_inputs;  // -1: variadic
};

// The opsets the runtime implements: 13 to 18. Older models load when every node's
// operator is unchanged since then (see OpSpec::since_version).
inline constexpr int64_t kMinOpset = 13;
inline constexpr int64_t kMaxOpset = 18;

const OpSpec* find_op(std::string_view op_type);
std::vector<std::string> supported_ops();

// Each ops_*.cpp lists its operators.
std::span<const OpSpec> elementwise_ops();
std::span<const OpSpec> shape_ops();
std::span<const OpSpec> reduce_ops();
std::span<const OpSpec> matmul_ops();
std::span<const OpSpec> nn_ops();

}  // namespace cosy::onnx
