// Every test of this binary reads the fixtures: without them the whole binary is skipped,
// saying why (or fails, when COSY_REQUIRE_FIXTURES is set), before any suite loads them.
#include <gtest/gtest.h>

#include "core/test_support.h"

namespace {

class GoldenFixtures : public ::testing::Environment {
 public:
  void SetUp() override { COSY_NEED_GOLDEN(); }
};

::testing::Environment* const kGoldenFixtures =
    ::testing::AddGlobalTestEnvironment(new GoldenFixtures);

}  // namespace
