// Helpers shared by the unit tests: where the fixtures are, and scratch directories.
#pragma once

#include <filesystem>
#include <string>

namespace cosy::testing {

// $COSY_GOLDEN_DIR, or the compiled-in default (../shared/golden from the source tree).
std::filesystem::path golden_dir();
// A fresh, empty directory for one test to write into.
std::filesystem::path scratch_dir(const std::string& name);

}  // namespace cosy::testing
