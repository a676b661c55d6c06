#include "core/file_io.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cosy {

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_whole_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail(path.string(), ": cannot write");
}

}  // namespace cosy
