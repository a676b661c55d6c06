#include "model/model_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu_backend.h"
#include "model/dit/token2wav.h"
#include "model/lm/speech_lm.h"
#include "model/model_folder.h"
#include "model/model_summary.h"
#include "model/param_schema.h"
#include "model/test_model_util.h"
#include "text/text_frontend.h"

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

// make-model --preset cosyvoice3-tiny: a folder that loads as CosyVoice3, every checkpoint
// checked against its schema, and whose models run: tokens in, finite audio out.
TEST(ModelWriter, CosyVoice3FolderLoadsAndMakesAudio) {
  const auto dir = cosy::testing::scratch_dir("writer-cv3");
  const ModelConfig c = preset_config("cosyvoice3-tiny");
  WriteModelOptions o;
  o.voices = false;
  o.frontend = WriteModelOptions::Frontend::None;
  write_model_folder(c, dir, o);
  EXPECT_FALSE(std::filesystem::exists(dir / "cosyvoice2.yaml"));
  const ModelFolder m = load_model_folder(dir);
  m.wait_verified();
  EXPECT_EQ(m.config.family, ModelFamily::CosyVoice3);
  EXPECT_EQ(m.config.flow.fields(), c.flow.fields());
  auto backend = cpu::create_cpu_backend();
  const SpeechLm lm(*backend, m.config.llm, m.llm);
  EXPECT_EQ(lm.vocab().size(), 6561 + 200);
  const DitFlowModel flow(*backend, m.config.flow, m.flow);
  const CausalHiftVocoder hift(*backend, m.config.hift, m.hift, causal_hift_noise_offset(m.config));
  const std::vector<int32_t> prompt = {1, 2, 3, 4}, tokens = {10, 20, 30, 40, 50, 60};
  const std::vector<float> prompt_feat(2 * prompt.size() * 80, -5.0f), xvec(192, 0.1f);
  const auto audio = Cv3Token2Wav::offline(flow, hift, prompt, prompt_feat, xvec, tokens);
  EXPECT_EQ(audio.size(), 2 * tokens.size() * 480);
  for (const float v : audio) ASSERT_TRUE(std::isfinite(v));
  // Frontend models (speech_tokenizer_v3.onnx) are not written for CosyVoice3 yet: a clear
  // error.
  WriteModelOptions with_frontend;
  with_frontend.frontend = WriteModelOptions::Frontend::Tiny;
  EXPECT_THROW(write_model_folder(c, dir, with_frontend), Error);
}

// A CosyVoice3 folder's voices carry the instruction CosyVoice3's LM needs: the prompt
// text holds the folder tokenizer's <|endofprompt|>.
TEST(ModelWriter, CosyVoice3VoicesEndTheirInstructionWithEndOfPrompt) {
  const auto dir = cosy::testing::scratch_dir("writer-cv3-voices");
  WriteModelOptions o;
  o.frontend = WriteModelOptions::Frontend::None;
  write_model_folder(preset_config("cosyvoice3-tiny"), dir, o);
  const ModelFolder m = load_model_folder(dir);
  ASSERT_TRUE(m.voices.has_value());
  ASSERT_EQ(m.voices->voices.size(), 1u);
  const auto eop =
      text::TextFrontend::load(dir / "CosyVoice-BlankEN").tokenizer().token_id("<|endofprompt|>");
  ASSERT_GE(eop, 0);
  const Tensor& text = m.voices->voices[0].tensors.at("prompt_text");
  const auto ids = text.to_int_vector();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eop), 1);
  EXPECT_GT(ids.end() - std::find(ids.begin(), ids.end(), eop), 1);  // a transcript follows
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
