#include "model/flow/uncond_first_pass.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cosy {
namespace {

std::shared_ptr<UncondFirstPass> entry(const void* model, int64_t from, int64_t to, int64_t commit,
                                       bool half) {
  auto e = std::make_shared<UncondFirstPass>();
  e->chunk = {model, from, to, commit, half};
  return e;
}

TEST(UncondFirstPassCache, FindsOnlyTheSameChunkOfTheSameModel) {
  const int model = 0, other = 0;
  UncondFirstPassCache cache(4);
  cache.insert(entry(&model, 100, 180, 150, false));
  EXPECT_NE(cache.find({&model, 100, 180, 150, false}), nullptr);
  EXPECT_EQ(cache.find({&other, 100, 180, 150, false}), nullptr);  // another model
  EXPECT_EQ(cache.find({&model, 0, 180, 150, false}), nullptr);
  EXPECT_EQ(cache.find({&model, 100, 200, 150, false}), nullptr);
  EXPECT_EQ(cache.find({&model, 100, 180, 100, false}), nullptr);
  EXPECT_EQ(cache.find({&model, 100, 180, 150, true}), nullptr);  // half-precision state
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 5);
}

TEST(UncondFirstPassCache, KeepsTheMostRecentlyUsed) {
  const int model = 0;
  UncondFirstPassCache cache(2);
  cache.insert(entry(&model, 0, 10, 10, false));
  cache.insert(entry(&model, 0, 20, 20, false));
  ASSERT_NE(cache.find({&model, 0, 10, 10, false}), nullptr);  // now the most recent
  cache.insert(entry(&model, 0, 30, 30, false));               // evicts the 20-frame one
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_NE(cache.find({&model, 0, 10, 10, false}), nullptr);
  EXPECT_EQ(cache.find({&model, 0, 20, 20, false}), nullptr);
  EXPECT_NE(cache.find({&model, 0, 30, 30, false}), nullptr);
  // The same chunk again replaces its entry.
  cache.insert(entry(&model, 0, 30, 30, false));
  EXPECT_EQ(cache.entries(), 2);
}

TEST(UncondFirstPassCache, RefusesNoEntries) { EXPECT_THROW(UncondFirstPassCache(0), Error); }

}  // namespace
}  // namespace cosy
