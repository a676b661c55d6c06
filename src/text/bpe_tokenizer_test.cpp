#include "text/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/test_support.h"

namespace cosy::text {
namespace {

namespace fs = std::filesystem;

fs::path tokenizer_dir() { return cosy::testing::golden_dir() / "tokenizer"; }

// The CosyVoice2 specials in file order, with the ids they must get.
std::vector<std::pair<std::string, int32_t>> specials() {
  std::ifstream in(tokenizer_dir() / "cosyvoice2_specials.json");
  const auto j = nlohmann::ordered_json::parse(in);
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& [k, v] : j.items()) out.emplace_back(k, v.get<int32_t>());
  return out;
}

// The model folder's second form: vocab.json + merges.txt + tokenizer_config.json only.
fs::path split_form() {
  const auto dir = cosy::testing::scratch_dir("tokenizer-split-form");
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json"})
    fs::copy_file(tokenizer_dir() / "model" / f, dir / f);
  return dir;
}

class GoldenTokenizer : public ::testing::TestWithParam<bool> {};

TEST_P(GoldenTokenizer, EveryCaseEncodesAndDecodesExactly) {
  COSY_NEED_GOLDEN();
  if (!fs::exists(tokenizer_dir() / "cases.jsonl")) GTEST_SKIP() << "no tokenizer cases";
  BpeTokenizer t = BpeTokenizer::load(GetParam() ? tokenizer_dir() / "model" : split_form());
  std::vector<std::string> names;
  for (const auto& [name, id] : specials()) names.push_back(name);
  t.add_special_tokens(names);
  for (const auto& [name, id] : specials()) EXPECT_EQ(t.token_id(name), id) << name;

  std::ifstream in(tokenizer_dir() / "cases.jsonl");
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    const std::string text = j.at("text").get<std::string>();
    const auto want = j.at("ids").get<std::vector<int32_t>>();
    const auto got = t.encode(text);
    EXPECT_EQ(got, want) << "case " << cases << ": " << text.substr(0, 80);
    EXPECT_EQ(t.decode(want), j.at("decoded").get<std::string>()) << "case " << cases;
    ++cases;
  }
  EXPECT_GT(cases, 0);
}
INSTANTIATE_TEST_SUITE_P(BothFileForms, GoldenTokenizer, ::testing::Values(true, false),
                         [](const auto& info) {
                           return info.param ? "tokenizer_json" : "vocab_merges";
                         });

TEST(BpeTokenizer, HostileInputIsSafe) {
  COSY_NEED_GOLDEN();
  BpeTokenizer t = BpeTokenizer::load(tokenizer_dir() / "model");
  EXPECT_THROW(t.encode("bad \xc3\x28 utf8"), Error);
  EXPECT_FALSE(t.encode(std::string("nul\0byte", 8)).empty());
  const std::string big(1 << 20, 'a');  // one 1 MiB word
  const auto ids = t.encode(big);
  EXPECT_EQ(t.decode(ids), big);
  EXPECT_THROW(t.decode({-1}), Error);
  EXPECT_THROW(t.decode({t.vocab_size()}), Error);
}

TEST(BpeTokenizer, MissingFilesNameTheFolder) {
  const auto dir = cosy::testing::scratch_dir("tokenizer-missing");
  try {
    BpeTokenizer::load(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace cosy::text
