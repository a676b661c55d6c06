#include "model/config.h"

#include <gtest/gtest.h>

#include "io/hyperpyyaml.h"
#include "model/model_folder.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "model/test_model_util.h"

namespace cosy {
namespace {

using cosy::testing::error_of;

ModelConfig parse_text(const std::string& yaml_text, const QwenConfig& q,
                       ModelFamily family = ModelFamily::CosyVoice2) {
  return parse_model_config(yaml::parse(yaml_text, "m.yaml"), q, family);
}

TEST(ModelConfig, FixtureFolderConfigIsConsistent) {
  COSY_NEED_GOLDEN();
  const ModelConfig c = load_model_config(cosy::testing::golden_dir() / "model");
  EXPECT_EQ(c.llm.llm_input_size, c.llm.qwen.hidden_size);
  EXPECT_EQ(c.flow.decoder.estimator.static_chunk_size, c.chunk_size * c.token_mel_ratio);
  EXPECT_EQ(c.token_frame_rate * c.token_mel_ratio * c.hift.samples_per_frame(), c.sample_rate);
  EXPECT_NE(fields_to_string("Flow", c.flow.fields()).find("UpsampleConformerEncoder("),
            std::string::npos);
}

TEST(ModelConfig, PresetsRoundTripThroughTheYaml) {
  for (const std::string& preset : preset_names()) {
    const ModelConfig c = preset_config(preset);
    const ModelConfig back = parse_text(model_yaml(c), c.llm.qwen, c.family);
    EXPECT_EQ(back.fields(), c.fields()) << preset;
    EXPECT_EQ(back.llm.fields(), c.llm.fields()) << preset;
    EXPECT_EQ(back.flow.fields(), c.flow.fields()) << preset;
    EXPECT_EQ(back.hift.fields(), c.hift.fields()) << preset;
    const QwenConfig q = parse_qwen_config(qwen_config_json(c.llm.qwen), "config.json");
    EXPECT_EQ(q.fields(), c.llm.qwen.fields()) << preset;
  }
  EXPECT_NE(error_of([] { preset_config("huge"); }).find("unknown preset"), std::string::npos);
}

// The released Fun-CosyVoice3-0.5B's parameter counts (its flow.pt and hift.pt as documented
// from the official construction): the schemas describe that model, tensor for tensor.
TEST(ModelConfig, CosyVoice3PresetHasTheReleasedParameterCounts) {
  const ModelConfig c = preset_config("cosyvoice3-0.5b");
  // torch counts a weight-normed weight as its two parametrizations (v, and g per output).
  auto count = [](const std::vector<ParamSpec>& specs) {
    int64_t n = 0;
    for (const auto& s : specs) {
      if (s.optional) continue;  // buffers (the DiT's rotary frequencies) are not parameters
      n += shape_numel(s.shape) + (s.weight_norm ? s.shape[0] : 0);
    }
    return n;
  };
  EXPECT_EQ(count(flow_param_specs(c.flow)), 332257088);
  EXPECT_EQ(count(hift_param_specs(c.hift)), 20779887);
  EXPECT_EQ(causal_hift_noise_offset(c), 5052961);
  // A CosyVoice2 yaml read as CosyVoice3 names the class it expected.
  const ModelConfig cv2 = preset_config("tiny");
  EXPECT_NE(error_of([&] {
              parse_text(model_yaml(cv2), cv2.llm.qwen, ModelFamily::CosyVoice3);
            }).find("CosyVoice3LM"),
            std::string::npos);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

TEST(ModelConfig, InconsistentYamlIsRejectedWithItsPath) {
  const ModelConfig c = preset_config("tiny");
  const std::string y = model_yaml(c);
  const QwenConfig q = c.llm.qwen;
  auto err = [&](const std::string& text) { return error_of([&] { parse_text(text, q); }); };
  EXPECT_NE(
      err(replace(y, "in_channels: 320", "in_channels: 321")).find("estimator.in_channels (321)"),
      std::string::npos);
  EXPECT_NE(err(replace(y, "llm: !new:cosyvoice.llm.llm.Qwen2LM",
                        "llm: !new:cosyvoice.llm.llm.TransformerLM"))
                .find("must be '!new:...Qwen2LM'"),
            std::string::npos);
  EXPECT_NE(
      err(replace(y, "upsample_rates: [8, 5, 3]", "upsample_rates: [8, 5]")).find("equal length"),
      std::string::npos);
  EXPECT_NE(
      err(replace(y, "num_blocks: 2", "num_blocks: two")).find("'flow.encoder.num_blocks' (line"),
      std::string::npos);
  EXPECT_NE(err(replace(y, "    cond_channels: 32", ""))
                .find("missing key 'hift.f0_predictor.cond_channels'"),
            std::string::npos);
  EXPECT_NE(err(replace(y, "sample_rate: 24000", "sample_rate: 16000"))
                .find("does not equal sample_rate 16000"),
            std::string::npos);
  EXPECT_NE(err(replace(y, "use_cnn_module: False", "use_cnn_module: True")).find("not supported"),
            std::string::npos);
  EXPECT_NE(
      err(replace(y, "chunk_size: 25", "chunk_size: [")).find("m.yaml: yaml syntax error at line"),
      std::string::npos);
  // Every message names the file.
  EXPECT_EQ(err(replace(y, "in_channels: 320", "in_channels: 321")).rfind("m.yaml", 0), 0u);
}

// Later upstream yamls drop the top-level chunk_size, let the encoder use dynamic chunks and
// give the estimator its chunk as <token_frame_rate> * <token_mel_ratio>.
TEST(ModelConfig, AcceptsTheNewerUpstreamLayout) {
  const ModelConfig c = preset_config("cosyvoice2-0.5b");
  std::string y = model_yaml(c);
  y = replace(y, "chunk_size: 25\nnum_decoding_left_chunks: -1\n", "");
  y = replace(y, "        static_chunk_size: !ref <chunk_size>\n",
              "        use_dynamic_chunk: True\n");
  y = replace(
      y, "static_chunk_size: !ref <chunk_size> * <token_mel_ratio>",
      "static_chunk_size: !ref <token_frame_rate> * <token_mel_ratio> # fixed kv cache size");
  y = replace(y, "num_decoding_left_chunks: !ref <num_decoding_left_chunks>",
              "num_decoding_left_chunks: 2");
  const ModelConfig back = parse_text(y, c.llm.qwen);
  EXPECT_TRUE(back.flow.encoder.use_dynamic_chunk);
  EXPECT_EQ(back.flow.encoder.static_chunk_size, 0);
  EXPECT_EQ(back.flow.decoder.estimator.static_chunk_size, c.token_frame_rate * c.token_mel_ratio);
  EXPECT_EQ(back.flow.decoder.estimator.num_decoding_left_chunks, 2);
}

TEST(QwenConfig, RejectsBadJson) {
  const std::string good = qwen_config_json(preset_config("tiny").llm.qwen);
  EXPECT_NO_THROW(parse_qwen_config(good, "c.json"));
  EXPECT_NE(error_of([] { parse_qwen_config("{", "c.json"); }).find("c.json: not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_qwen_config(replace(good, "\"hidden_size\": 64", "\"hidden_size\": \"64\""),
                                "c.json");
            }).find("'hidden_size' must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_qwen_config(
                  replace(good, "\"num_attention_heads\": 4", "\"num_attention_heads\": 3"),
                  "c.json");
            }).find("not divisible"),
            std::string::npos);
}

}  // namespace
}  // namespace cosy
