// ONNX TensorProto <-> Tensor: element types, raw or typed data, and external data files.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace onnx {
class TensorProto;
}

namespace cosy::onnx {

// Our element type for an ONNX TensorProto.DataType, or nullopt (string, uint16/32/64,
// complex, float8) when the runtime has none.
std::optional<DType> dtype_from_onnx(int elem_type);
int dtype_to_onnx(DType t);
const char* onnx_type_name(int elem_type);

// The tensor a TensorProto holds. Raw bytes are viewed in place (`owner` keeps the proto
// alive); external data is mapped from a file under `base_dir` (the mapping is appended
// to `keep_alive`). Typed fields are converted into a new tensor.
Tensor tensor_from_proto(const ::onnx::TensorProto& p, const std::shared_ptr<const void>& owner,
                         const std::filesystem::path& base_dir,
                         std::vector<std::shared_ptr<const void>>& keep_alive);

// A serialized TensorProto file (ONNX's test data sets), copied into memory.
Tensor read_tensor_file(const std::filesystem::path& path);

}  // namespace cosy::onnx
