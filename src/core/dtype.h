// Element types of tensors as they appear in checkpoints and fixtures.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cosy {

enum class DType : uint8_t { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "f32", "bf16", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool is_floating(DType t);

}  // namespace cosy
