// Whole files (configs, tokenizer JSON, test data) as byte strings; errors name the file.
#pragma once

#include <filesystem>
#include <string>

namespace cosy {

std::string read_whole_file(const std::filesystem::path& path);
void write_whole_file(const std::filesystem::path& path, const std::string& bytes);

}  // namespace cosy
