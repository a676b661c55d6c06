// Helpers shared by the unit tests: where the fixtures are, and scratch directories.
#pragma once

#include <filesystem>
#include <string>

namespace cosy::testing {

// $COSY_GOLDEN_DIR, or the compiled-in default (../shared/golden from the source tree).
std::filesystem::path golden_dir();
// "" when the fixture directory is there, else a sentence saying it is missing and how to
// point the tests at it.
std::string golden_missing();
// $COSY_GOLDEN_CV3_DIR, or the compiled-in default (../shared/golden-cv3): the CosyVoice3
// fixture set.
std::filesystem::path golden_cv3_dir();
std::string golden_cv3_missing();
// $COSY_ONNX_NODE_DIR, or the compiled-in default (../shared/onnx-node): ONNX's own
// operator conformance tests.
std::filesystem::path onnx_node_dir();
std::string onnx_node_missing();
// Whether missing fixtures fail the tests that need them instead of skipping them
// ($COSY_REQUIRE_FIXTURES non-empty: CI sets it, so fixtures lost in CI are never a pass).
bool fixtures_required();
// A fresh, empty directory for one test to write into.
std::filesystem::path scratch_dir(const std::string& name);

}  // namespace cosy::testing

// First thing in a GoogleTest test (or SetUp) that reads the fixtures: in a clone with
// nothing beside it the test is skipped and says why, unless fixtures are required.
#define COSY_NEED_FIXTURES(missing_fn)                                         \
  do {                                                                         \
    if (const std::string why = ::cosy::testing::missing_fn(); !why.empty()) { \
      if (::cosy::testing::fixtures_required()) FAIL() << why;                 \
      GTEST_SKIP() << why;                                                     \
    }                                                                          \
  } while (false)
#define COSY_NEED_GOLDEN() COSY_NEED_FIXTURES(golden_missing)
#define COSY_NEED_GOLDEN_CV3() COSY_NEED_FIXTURES(golden_cv3_missing)
#define COSY_NEED_ONNX_NODE() COSY_NEED_FIXTURES(onnx_node_missing)
