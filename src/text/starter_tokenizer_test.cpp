#include "text/starter_tokenizer.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/test_support.h"
#include "text/bpe_tokenizer.h"
#include "text/text_frontend.h"

namespace cosy::text {
namespace {

TEST(StarterTokenizer, LoadsAsAReleasedFolderWouldAndRoundTripsAnyText) {
  const auto dir = cosy::testing::scratch_dir("starter-tokenizer");
  write_starter_tokenizer(dir);
  ASSERT_TRUE(BpeTokenizer::present(dir));
  const TextFrontend frontend = TextFrontend::load(dir);
  for (const char* text : {"Hello there! How are you today?", "你好，欢迎使用语音合成。",
                           "Ünïcödé ✓ and <|endofprompt|> stay whole", "\t\n"}) {
    const auto ids = frontend.encode(text);
    EXPECT_EQ(frontend.tokenizer().decode(ids), text);
    for (const int32_t id : ids) EXPECT_LT(id, 1024) << text;
  }
  // The merges learned from the sample make common words shorter than one id per byte.
  const std::string common = "the weather is nice today";
  EXPECT_LT(frontend.encode(common).size(), common.size() * 2 / 3);
  // CosyVoice2's specials go on top, as they do for a released folder.
  EXPECT_EQ(frontend.encode("<|endofprompt|>").size(), 1u);
}

TEST(StarterTokenizer, IsTheSameEveryTime) {
  const auto a = cosy::testing::scratch_dir("starter-tokenizer-a");
  const auto b = cosy::testing::scratch_dir("starter-tokenizer-b");
  write_starter_tokenizer(a);
  write_starter_tokenizer(b);
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json"}) {
    EXPECT_EQ(read_whole_file(a / f), read_whole_file(b / f)) << f;
  }
}

}  // namespace
}  // namespace cosy::text
