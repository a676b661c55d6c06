#include "core/test_support.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cosy::testing {

std::filesystem::path golden_dir() {
  if (const char* env = std::getenv("COSY_GOLDEN_DIR"); env != nullptr && *env != '\0') return env;
  return COSY_GOLDEN_DIR_DEFAULT;
}

std::filesystem::path scratch_dir(const std::string& name) {
  const char* env = std::getenv("COSY_TEST_TMP");
  std::filesystem::path base =
      env != nullptr ? env : std::filesystem::temp_directory_path() / "cosy-test";
  std::filesystem::path dir = base / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace cosy::testing
