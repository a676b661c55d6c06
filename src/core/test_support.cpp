#include "core/test_support.h"

#include <cstdlib>

namespace cosy::testing {

std::filesystem::path golden_dir() {
  if (const char* env = std::getenv("COSY_GOLDEN_DIR"); env != nullptr && *env != '\0') return env;
  return COSY_GOLDEN_DIR_DEFAULT;
}

std::string golden_missing() {
  const auto dir = golden_dir();
  if (std::filesystem::is_directory(dir)) return "";
  return "fixtures missing: " + dir.string() +
         " is not a directory (set COSY_GOLDEN_DIR to the golden fixture set)";
}

std::filesystem::path onnx_node_dir() {
  if (const char* env = std::getenv("COSY_ONNX_NODE_DIR"); env != nullptr && *env != '\0') return env;
  return COSY_ONNX_NODE_DIR_DEFAULT;
}

std::string onnx_node_missing() {
  const auto dir = onnx_node_dir();
  if (std::filesystem::is_directory(dir)) return "";
  return "fixtures missing: " + dir.string() +
         " is not a directory (set COSY_ONNX_NODE_DIR to ONNX's node tests)";
}

bool fixtures_required() {
  const char* env = std::getenv("COSY_REQUIRE_FIXTURES");
  return env != nullptr && *env != '\0';
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

}  // namespace cosy::testing
