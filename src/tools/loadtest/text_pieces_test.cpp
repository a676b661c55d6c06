#include "tools/loadtest/text_pieces.h"

#include <gtest/gtest.h>

namespace cosy::loadtest {
namespace {

TEST(TextPieces, WordsWithTheirSpaceAndOneCjkCharacterEach) {
  EXPECT_EQ(text_pieces("Hello there, 你好。 ok", nullptr),
            (std::vector<std::string>{"Hello ", "there, ", "你", "好", "。", " ", "ok"}));
  EXPECT_TRUE(text_pieces("", nullptr).empty());
  std::string joined;
  for (const auto& p : text_pieces("The quick brown fox, 然后跑了。", nullptr)) joined += p;
  EXPECT_EQ(joined, "The quick brown fox, 然后跑了。");
}

}  // namespace
}  // namespace cosy::loadtest
