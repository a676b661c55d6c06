// Whole small files (configs, tokenizer JSON) as strings; errors name the file.
#pragma once

#include <filesystem>
#include <string>

namespace cosy {

std::string read_text_file(const std::filesystem::path& path);
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace cosy
