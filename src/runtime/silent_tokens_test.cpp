#include "runtime/silent_tokens.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cosy {
namespace {

std::vector<int32_t> kept(SilentTokenCap cap, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> out;
  for (const int32_t t : tokens)
    if (cap.keep(t)) out.push_back(t);
  return out;
}

TEST(SilentTokenCap, DropsSilentTokensPastTheBoundAndResetsOnSpeech) {
  const SilentTokenCap::Options o{{7, 8}, 2};
  // 7 8 7 is a run of three silent tokens (mixed ids count together): the third goes.
  EXPECT_EQ(kept(SilentTokenCap(o), {7, 8, 7, 3, 8, 8, 8, 8, 4, 7}),
            (std::vector<int32_t>{7, 8, 3, 8, 8, 4, 7}));
  EXPECT_EQ(kept(SilentTokenCap(o), {1, 2, 3}), (std::vector<int32_t>{1, 2, 3}));
}

TEST(SilentTokenCap, CosyVoice3KeepsFiveOfItsSilentSet) {
  std::vector<int32_t> run(9, 2241);
  run.push_back(100);
  run.push_back(1);
  auto out = kept(SilentTokenCap(SilentTokenCap::cosyvoice3()), run);
  EXPECT_EQ(out, (std::vector<int32_t>{2241, 2241, 2241, 2241, 2241, 100, 1}));
}

TEST(SilentTokenCap, NegativeBoundIsAnError) {
  EXPECT_THROW(SilentTokenCap(SilentTokenCap::Options{{1}, -1}), Error);
}

}  // namespace
}  // namespace cosy
