#include "text/segmenter.h"

#include <gtest/gtest.h>

#include <sstream>

#include "core/error.h"

namespace cosy::text {
namespace {

using V = std::vector<std::string>;

// English lengths in these tests: whitespace-separated words stand in for tokens.
size_t words(std::string_view s) {
  std::istringstream in{std::string(s)};
  size_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

V zh(std::string_view text, SegmenterOptions o = {}) {
  return split_segments(text, Language::Chinese, o, words);
}
V en(std::string_view text, SegmenterOptions o = {}) {
  return split_segments(text, Language::English, o, words);
}

TEST(Segmenter, ShortTextIsOneSegmentEndingInPunctuation) {
  EXPECT_EQ(zh("你好世界"), (V{"你好世界。"}));
  EXPECT_EQ(en("Hello world"), (V{"Hello world."}));
  EXPECT_EQ(zh("你好。世界！"), (V{"你好。世界！"}));
  EXPECT_EQ(zh(""), V{});
}

TEST(Segmenter, ChineseCountsCharactersAndPacksSentences) {
  SegmenterOptions o{10, 6, 3, false};
  // Sentences of 5 characters each: a segment closes once it holds more than 6 and the
  // next sentence would push it past 10.
  EXPECT_EQ(zh("一二三四。五六七八。甲乙丙丁。子丑寅卯。", o),
            (V{"一二三四。五六七八。", "甲乙丙丁。子丑寅卯。"}));
  // A tail shorter than merge_len joins the segment before it.
  EXPECT_EQ(zh("一二三四。五六七八。甲乙丙丁。子丑寅卯。辰。", o),
            (V{"一二三四。五六七八。", "甲乙丙丁。子丑寅卯。辰。"}));
  // Repeated marks: the official splitter keeps the first and drops the rest.
  EXPECT_EQ(zh("好！！", o), (V{"好！"}));
}

TEST(Segmenter, EnglishCountsTokensAndItsOwnPunctuation) {
  SegmenterOptions o{6, 3, 2, false};
  EXPECT_EQ(en("one two three. four five six. seven eight nine! ten eleven", o),
            (V{"one two three. four five six.", " seven eight nine! ten eleven."}));
  // '、' ends a Chinese sentence but not an English one.
  EXPECT_EQ(en("a、b", o), (V{"a、b."}));
}

TEST(Segmenter, ClosingQuotesStayWithTheirSentence) {
  SegmenterOptions o{4, 2, 1, false};
  EXPECT_EQ(zh("他说“好的。”然后走了。", o), (V{"他说“好的。”", "然后走了。"}));
}

TEST(Segmenter, CommaSplitIsOptional) {
  SegmenterOptions o{3, 1, 1, false};
  EXPECT_EQ(zh("一二，三四，五六。", o), (V{"一二，三四，五六。"}));
  o.comma_split = true;
  EXPECT_EQ(zh("一二，三四，五六。", o), (V{"一二，", "三四，", "五六。"}));
}

TEST(Segmenter, DetectsChineseAndRejectsInvalidUtf8) {
  EXPECT_TRUE(contains_chinese("mixed 中文 text"));
  EXPECT_FALSE(contains_chinese("plain english, ＡＢＣ"));
  EXPECT_THROW(zh("bad \xff"), Error);
}

}  // namespace
}  // namespace cosy::text
