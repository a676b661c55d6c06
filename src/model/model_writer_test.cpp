#include "model/model_writer.h"

#include <gtest/gtest.h>

#include "model/model_folder.h"
#include "model/model_summary.h"
#include "model/param_schema.h"
#include "model/test_model_util.h"

namespace cosy {
namespace {

TEST(ModelWriter, WrittenFolderLoadsWithTheSameConfig) {
  const auto dir = cosy::testing::write_small_model("writer-roundtrip", 7);
  const ModelFolder m = load_model_folder(dir);
  const ModelConfig expected = cosy::testing::small_config();
  EXPECT_EQ(m.config.llm.fields(), expected.llm.fields());
  EXPECT_EQ(m.config.flow.fields(), expected.flow.fields());
  EXPECT_EQ(m.config.hift.fields(), expected.hift.fields());
  EXPECT_EQ(m.config.llm.qwen.fields(), expected.llm.qwen.fields());
  // The tied text head is written once and shares the embedding's storage.
  EXPECT_EQ(m.llm.at("llm.model.lm_head.weight").raw(),
            m.llm.at("llm.model.model.embed_tokens.weight").raw());
  ASSERT_TRUE(m.voices.has_value());
  ASSERT_EQ(m.voices->voices.size(), 1u);
  EXPECT_TRUE(m.voices->voices[0].is_zero_shot());
}

TEST(ModelWriter, SeedsAreDeterministicAndDistinct) {
  const auto a = load_state_dict(cosy::testing::write_small_model("writer-seed-a", 3) / "flow.pt");
  const auto b = load_state_dict(cosy::testing::write_small_model("writer-seed-b", 3) / "flow.pt");
  const auto c = load_state_dict(cosy::testing::write_small_model("writer-seed-c", 4) / "flow.pt");
  const std::string name = a.names().front();
  EXPECT_EQ(a.at(name).to_float_vector(), b.at(name).to_float_vector());
  EXPECT_NE(a.at(name).to_float_vector(), c.at(name).to_float_vector());
}

TEST(ModelWriter, FullSizePresetHasTheReleasedParameterCounts) {
  // Counted from the schema only: writing 2.5 GB is the bench's job, not a unit test's.
  const ModelConfig c = preset_config("cosyvoice2-0.5b");
  const int64_t llm =
      count_parameters(llm_param_specs(c.llm)) - int64_t{151936} * 896;  // tied head counted once
  EXPECT_GT(llm, 490'000'000);
  EXPECT_LT(llm, 520'000'000);
  EXPECT_GT(count_parameters(flow_param_specs(c.flow)), 100'000'000);
  EXPECT_GT(count_parameters(hift_param_specs(c.hift)), 15'000'000);
}

TEST(ModelWriter, CopiesTokenizerFilesWhenGiven) {
  COSY_NEED_GOLDEN();
  const auto tok = cosy::testing::golden_dir() / "tokenizer" / "model";
  if (!std::filesystem::exists(tok / "vocab.json"))
    GTEST_SKIP() << "no tokenizer files in the fixtures";
  const auto dir = cosy::testing::scratch_dir("writer-tokenizer");
  WriteModelOptions o;
  o.tokenizer_dir = tok;
  write_model_folder(cosy::testing::small_config(), dir, o);
  EXPECT_EQ(std::filesystem::file_size(dir / "CosyVoice-BlankEN" / "vocab.json"),
            std::filesystem::file_size(tok / "vocab.json"));
}

}  // namespace
}  // namespace cosy
