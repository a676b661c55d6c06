// Every test of this binary reads the CosyVoice3 fixtures: without them the whole binary is
// skipped, saying why (or fails, when COSY_REQUIRE_FIXTURES is set).
#include <gtest/gtest.h>

#include "core/test_support.h"

namespace {

class GoldenCv3Fixtures : public ::testing::Environment {
 public:
  void SetUp() override { COSY_NEED_GOLDEN_CV3(); }
};

::testing::Environment* const kGoldenCv3Fixtures =
    ::testing::AddGlobalTestEnvironment(new GoldenCv3Fixtures);

}  // namespace
