// safetensors files (a Qwen model.safetensors, debugging dumps): read-only, zero copy.
#pragma once

#include <filesystem>
#include <string>

#include "io/blob.h"
#include "io/torch_checkpoint.h"

namespace cosy {

StateDict load_safetensors(const std::filesystem::path& path);
StateDict parse_safetensors(const Blob& bytes, const std::string& label);

}  // namespace cosy
