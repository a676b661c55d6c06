#include "core/test_support.h"

#include <cstdlib>

namespace cosy::testing {
namespace {

std::filesystem::path from_env(const char* var, const char* fallback) {
  if (const char* env = std::getenv(var); env != nullptr && *env != '\0') return env;
  return fallback;
}

std::string missing(const std::filesystem::path& dir, const std::string& how) {
  if (std::filesystem::is_directory(dir)) return "";
  return "fixtures missing: " + dir.string() + " is not a directory (" + how + ")";
}

}  // namespace

std::filesystem::path golden_dir() { return from_env("COSY_GOLDEN_DIR", COSY_GOLDEN_DIR_DEFAULT); }

std::string golden_missing() {
  return missing(golden_dir(), "set COSY_GOLDEN_DIR to the golden fixture set");
}

std::filesystem::path golden_cv3_dir() {
  return from_env("COSY_GOLDEN_CV3_DIR", COSY_GOLDEN_CV3_DIR_DEFAULT);
}

std::string golden_cv3_missing() {
  return missing(golden_cv3_dir(), "set COSY_GOLDEN_CV3_DIR to the CosyVoice3 golden fixture set");
}

std::filesystem::path onnx_node_dir() {
  return from_env("COSY_ONNX_NODE_DIR", COSY_ONNX_NODE_DIR_DEFAULT);
}

std::string onnx_node_missing() {
  return missing(onnx_node_dir(), "set COSY_ONNX_NODE_DIR to ONNX's node tests");
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
