#include "io/text_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cosy {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) fail(path.string(), ": cannot write");
}

}  // namespace cosy
