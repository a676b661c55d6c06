#include "tools/loadtest/corpus.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "text/utf8.h"

namespace cosy::loadtest {
namespace {

TEST(Corpus, OneSentencePerLineWithoutCommentsOrBlanks) {
  const Corpus c =
      parse_corpus("# a comment\nHello there.\r\n\n   \n  你好。\n  # indented\nBye", "t");
  EXPECT_EQ(c.texts, (std::vector<std::string>{"Hello there.", "你好。", "Bye"}));
}

TEST(Corpus, EmptyOrNotUtf8IsAClearError) {
  try {
    parse_corpus("# only a comment\n\n", "empty.txt");
    FAIL() << "an empty corpus was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.txt: no sentences"), std::string::npos) << e.what();
  }
  try {
    parse_corpus("fine\nbad \xC3\x28 byte\n", "latin1.txt");
    FAIL() << "invalid UTF-8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("latin1.txt: line 2 is not UTF-8"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_corpus("/nonexistent/corpus.txt"), Error);
}

// The built-in corpus: a few hundred sentences, English and Chinese, short and long.
TEST(Corpus, TheBuiltInOneHasBothLanguagesAndMixedLengths) {
  const Corpus c = builtin_corpus();
  EXPECT_EQ(c.source, "built-in");
  EXPECT_GE(c.texts.size(), 250u);
  size_t chinese = 0, shortest = SIZE_MAX, longest = 0;
  for (const std::string& t : c.texts) {
    bool cjk = false;
    size_t chars = 0;
    text::for_each_code_point(t, [&](UChar32 ch, size_t, size_t) {
      cjk = cjk || (ch >= 0x4E00 && ch <= 0x9FFF);
      ++chars;
    });
    chinese += cjk ? 1 : 0;
    shortest = std::min(shortest, chars);
    longest = std::max(longest, chars);
  }
  EXPECT_GE(chinese, 100u);
  EXPECT_GE(c.texts.size() - chinese, 100u);
  EXPECT_LE(shortest, 10u);
  EXPECT_GE(longest, 100u);
}

}  // namespace
}  // namespace cosy::loadtest
