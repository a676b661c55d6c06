#include "text/pretokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "text/utf8.h"

namespace cosy::text {
namespace {

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  for (auto p : pretokenize(s)) out.emplace_back(p);
  return out;
}

using V = std::vector<std::string>;

TEST(Pretokenizer, FollowsEachAlternativeOfTheQwenPattern) {
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("don't WE'LL"), (V{"don", "'t", " WE", "'LL"}));  // contractions, any case
  EXPECT_EQ(split("abc123"), (V{"abc", "1", "2", "3"}));            // digits one at a time
  EXPECT_EQ(split("$abc"), (V{"$abc"}));                            // one non-letter may lead
  EXPECT_EQ(split("a, b!!\n"), (V{"a", ",", " b", "!!\n"}));      // punctuation keeps its newlines
  EXPECT_EQ(split("x  \n\n  y"), (V{"x", "  \n\n", " ", " y"}));  // \s*[\r\n]+, then \s+(?!\S)
  EXPECT_EQ(split("a   b"), (V{"a", "  ", " b"}));                // run less its last space
  EXPECT_EQ(split("a \t"), (V{"a", " \t"}));                      // trailing run whole
  EXPECT_EQ(split(" 1"), (V{" ", "1"}));
  EXPECT_EQ(split("你好，世界！"), (V{"你好", "，世界", "！"}));  // punctuation leads the next word
}

TEST(Pretokenizer, PiecesConcatenateToTheInput) {
  const std::string s = "Mixed 中文 text, with\r\nnewlines\tand 12.5% — symbols… ok";
  std::string joined;
  for (auto p : pretokenize(s)) joined += p;
  EXPECT_EQ(joined, s);
}

TEST(Pretokenizer, InvalidUtf8IsAnError) {
  EXPECT_THROW(pretokenize("ok \xff bad"), Error);
  EXPECT_THROW(check_utf8("\xe4\xbd"), Error);  // truncated sequence
  EXPECT_NO_THROW(check_utf8(std::string("nul\0inside", 10)));
}

}  // namespace
}  // namespace cosy::text
