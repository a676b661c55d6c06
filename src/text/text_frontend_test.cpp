#include "text/text_frontend.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/test_support.h"
#include "text/starter_tokenizer.h"

namespace cosy::text {
namespace {

namespace fs = std::filesystem;

fs::path tokenizer_dir() { return cosy::testing::golden_dir() / "tokenizer"; }

class TextFrontendTest : public ::testing::Test {
 protected:
  // The fixture tokenizer when there is one; else our starter tokenizer, since the rules
  // tested here (normalisation, splitting) do not depend on the vocabulary.
  static void SetUpTestSuite() {
    if (fs::exists(tokenizer_dir() / "model" / "tokenizer.json")) {
      frontend_ = new TextFrontend(TextFrontend::load(tokenizer_dir() / "model"));
    } else if (!cosy::testing::fixtures_required()) {
      const auto dir = cosy::testing::scratch_dir("frontend-starter-tokenizer");
      write_starter_tokenizer(dir);
      frontend_ = new TextFrontend(TextFrontend::load(dir));
    }
  }
  static void TearDownTestSuite() {
    delete frontend_;
    frontend_ = nullptr;
  }
  void SetUp() override {
    if (frontend_ == nullptr) COSY_NEED_GOLDEN();
    ASSERT_NE(frontend_, nullptr) << "no tokenizer.json in the fixtures' tokenizer/model";
  }
  static TextFrontend* frontend_;
};
TextFrontend* TextFrontendTest::frontend_ = nullptr;

// The built-in list of CosyVoice2 specials gets exactly the ids the fixture lists.
TEST_F(TextFrontendTest, SpecialTokensGetTheOfficialIds) {
  COSY_NEED_GOLDEN();
  std::ifstream in(tokenizer_dir() / "cosyvoice2_specials.json");
  if (!in) GTEST_SKIP() << "no cosyvoice2_specials.json in this fixture set";
  const auto j = nlohmann::ordered_json::parse(in);
  std::vector<std::string> names;
  for (const auto& [k, v] : j.items()) {
    names.push_back(k);
    EXPECT_EQ(frontend_->tokenizer().token_id(k), v.get<int32_t>()) << k;
  }
  EXPECT_EQ(names, cosyvoice2_special_tokens());
  // Matched whole inside text.
  const auto ids = frontend_->encode("a[breath]b");
  EXPECT_NE(std::find(ids.begin(), ids.end(), j["[breath]"].get<int32_t>()), ids.end());
}

TEST_F(TextFrontendTest, ChineseRules) {
  const TextFrontend& f = *frontend_;
  EXPECT_EQ(f.normalize("  你好\n世界  "), "你好世界");
  EXPECT_EQ(f.normalize("你好 world 和 AI"), "你好world和AI");  // a space needs ASCII both sides
  EXPECT_EQ(f.normalize("你好 big world"), "你好big world");
  EXPECT_EQ(f.normalize("x²加y³"), "x平方加y立方");
  EXPECT_EQ(f.normalize("面积5m²，体积3m³"), "面积五平方米，体积三立方米");  // units first
  EXPECT_EQ(f.normalize("你好.再见"), "你好。再见");
  // " - " → "，" runs after the spaces are dropped, so it fires only between ASCII words.
  EXPECT_EQ(f.normalize("北京 - 上海"), "北京-上海");
  EXPECT_EQ(f.normalize("中文A - B"), "中文A，B");
  EXPECT_EQ(f.normalize("（注）【重要】`代码`"), "注重要代码");
  EXPECT_EQ(f.normalize("等等——然后"), "等等 然后");
  EXPECT_EQ(f.normalize("苹果，香蕉、,，"), "苹果，香蕉。");
}

TEST_F(TextFrontendTest, EnglishIsStrippedCleanedAndRead) {
  EXPECT_EQ(frontend_->normalize("\t Hello, world - again.  "), "Hello, world - again.");
  EXPECT_EQ(frontend_->normalize("   "), "");
  EXPECT_EQ(frontend_->normalize("Nice 😀"), "Nice");
  EXPECT_EQ(frontend_->normalize("It costs $5 👍 on 2024-03-05！"),
            "It costs five dollars on March fifth, twenty twenty-four!");
}

// Written forms are read before the punctuation rules, so "3.14." keeps its point and only
// the full stop becomes "。"; what cannot be spoken is gone, full-width digits are read.
TEST_F(TextFrontendTest, ChineseWrittenFormsBeforePunctuation) {
  const TextFrontend& f = *frontend_;
  EXPECT_EQ(f.normalize("圆周率是3.14."), "圆周率是三点一四。");
  EXPECT_EQ(f.normalize("今天是2024-03-05，气温25℃😀"),
            "今天是二零二四年三月五日，气温二十五摄氏度");
  EXPECT_EQ(f.normalize("买了２个，花了５０％的钱"), "买了两个，花了百分之五十的钱");
}

TEST_F(TextFrontendTest, SplitsLongTextAndDropsPunctuationOnlySegments) {
  std::string text;
  for (int i = 0; i < 30; ++i)
    text += "This is sentence number " + std::string(1, char('a' + i % 26)) + ". ";
  const auto segments = frontend_->prepare(text);
  ASSERT_GT(segments.size(), 1u);
  for (const auto& s : segments) {
    EXPECT_FALSE(s.ids.empty());
    EXPECT_EQ(s.ids, frontend_->encode(s.text));
    EXPECT_LE(s.ids.size(), 80u + 20u) << s.text;  // max_len, plus a merged short tail
  }
  EXPECT_TRUE(frontend_->prepare("...!?").empty());
  EXPECT_TRUE(frontend_->prepare("").empty());
  EXPECT_TRUE(is_only_punctuation("。！？…$+"));
  EXPECT_FALSE(is_only_punctuation("a."));
  EXPECT_FALSE(is_only_punctuation("?? !"));  // the official rule: a space is something
  EXPECT_TRUE(has_nothing_to_speak("?? !\t…"));
  EXPECT_FALSE(has_nothing_to_speak("? a"));
}

TEST_F(TextFrontendTest, BadTextIsAClearError) {
  EXPECT_THROW(frontend_->prepare(std::string("a\xff"
                                              "b")),
               Error);
  // NUL bytes and a megabyte of text are handled, not a crash.
  EXPECT_NO_THROW(frontend_->prepare(std::string("a\0b.", 4)));
  const std::string big(1 << 20, 'a');
  EXPECT_NO_THROW(frontend_->prepare(big));
}

}  // namespace
}  // namespace cosy::text

namespace cosy::text {
namespace {

// CosyVoice3's frontend on the same tokenizer files: CosyVoice2's specials keep their ids,
// then <|endofsystem|>, the CMU phones and the pinyin follow in order; each is one token
// inside text; text with a <|...|> tag is one segment as written, other text as CosyVoice2.
TEST(TextFrontendCv3, AddsItsTokensAfterCosyVoice2sAndKeepsTaggedTextAsWritten) {
  const auto dir = cosy::testing::scratch_dir("frontend-cv3-tokenizer");
  write_starter_tokenizer(dir);
  const TextFrontend cv2 = TextFrontend::load(dir);
  const TextFrontend cv3 = TextFrontend::load(dir, TextFlavor::CosyVoice3);
  for (const std::string& t : cosyvoice2_special_tokens())
    EXPECT_EQ(cv3.tokenizer().token_id(t), cv2.tokenizer().token_id(t)) << t;
  const auto& all = cosyvoice3_special_tokens();
  ASSERT_EQ(all.size(), cosyvoice2_special_tokens().size() + 261);
  EXPECT_EQ(cv2.tokenizer().token_id("<|endofsystem|>"), -1);
  const int32_t first = cv3.tokenizer().token_id("<|endofsystem|>");
  ASSERT_GE(first, 0);
  for (size_t i = cosyvoice2_special_tokens().size(); i < all.size(); ++i)
    EXPECT_EQ(cv3.tokenizer().token_id(all[i]),
              first + static_cast<int32_t>(i - cosyvoice2_special_tokens().size()))
        << all[i];
  EXPECT_EQ(cv3.encode("[iǎng]"), std::vector<int32_t>{cv3.tokenizer().token_id("[iǎng]")});
  EXPECT_EQ(cv3.encode("[ZH]"), std::vector<int32_t>{cv3.tokenizer().token_id("[ZH]")});

  const std::string tagged =
      "You are a helpful assistant.<|endofprompt|>It costs $5. Then 12 more!";
  EXPECT_TRUE(cv3.kept_as_written(tagged));
  EXPECT_FALSE(cv2.kept_as_written(tagged));
  const auto kept = cv3.prepare(tagged);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].text, tagged);
  EXPECT_EQ(kept[0].ids, cv3.encode(tagged));
  // Untagged text is normalised and split as for CosyVoice2.
  const std::string plain = "It costs $5. Then 12 more!";
  ASSERT_FALSE(cv3.kept_as_written(plain));
  const auto a = cv2.prepare(plain), b = cv3.prepare(plain);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].text, b[i].text);
  EXPECT_EQ(b[0].text.find('$'), std::string::npos) << b[0].text;  // "$5" was read as words
}

}  // namespace
}  // namespace cosy::text
