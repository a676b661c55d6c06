// NumPy .npy files (format 1.0-3.0): read, mapped in place when aligned; write for debugging.
#pragma once

#include <filesystem>
#include <string>

#include "core/tensor.h"
#include "io/blob.h"

namespace cosy {

Tensor load_npy(const std::filesystem::path& path);
// Parses npy bytes; the tensor aliases `bytes` when the data is aligned (label names it in errors).
Tensor parse_npy(const Blob& bytes, const std::string& label);
// Writes `t` (any supported dtype) as a format-1.0 C-order .npy file.
void save_npy(const std::filesystem::path& path, const Tensor& t);
std::string npy_bytes(const Tensor& t);

}  // namespace cosy
