#include "model/param_schema.h"

#include <gtest/gtest.h>

#include "model/model_folder.h"
#include "model/model_summary.h"
#include "model/test_model_util.h"

namespace cosy {
namespace {

using cosy::testing::error_of;

// Rewrites `file` in `dir` after `edit` changes its tensor list.
template <typename Edit>
void rewrite(const std::filesystem::path& dir, const std::string& file, Edit&& edit) {
  StateDict sd = load_state_dict(dir / file);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& n : sd.names()) tensors.emplace_back(n, sd.at(n).contiguous());
  edit(tensors);
  const auto tmp = dir / (file + ".tmp");
  save_state_dict(tmp, file.substr(0, file.find('.')), tensors);
  std::filesystem::rename(tmp, dir / file);
}

// Parameters the files should hold for `specs`: weight-norm layers add their g vectors,
// and the tied text head shares the embedding's storage.
int64_t stored_parameters(const std::vector<ParamSpec>& specs, const StateDict& sd) {
  int64_t n = 0;
  for (const ParamSpec& s : specs) {
    if (s.optional) continue;
    n += shape_numel(s.shape);
    if (s.weight_norm && sd.find(s.name) == nullptr) n += s.shape[0];
  }
  return n;
}

TEST(ParamSchema, FixtureCheckpointsMatchTheirConfigs) {
  COSY_NEED_GOLDEN();
  // load_model_folder checks every tensor against the schema; the counts must agree too.
  const ModelFolder m = load_model_folder(cosy::testing::golden_dir() / "model");
  EXPECT_EQ(summarize(m.llm).parameters, stored_parameters(llm_param_specs(m.config.llm), m.llm));
  EXPECT_EQ(summarize(m.flow).parameters,
            stored_parameters(flow_param_specs(m.config.flow), m.flow));
  EXPECT_EQ(summarize(m.hift).parameters,
            stored_parameters(hift_param_specs(m.config.hift), m.hift));
  EXPECT_EQ(summarize(m.llm).tensors, m.llm.size());
}

TEST(ParamSchema, MismatchesNameTheTensorAndBothShapes) {
  const auto dir = cosy::testing::write_small_model("schema-mismatch");
  rewrite(dir, "flow.pt", [](auto& t) { t[3].second = Tensor::zeros(DType::F32, {7, 7}); });
  const std::string msg = error_of([&] { load_model_folder(dir); });
  EXPECT_NE(
      msg.find(
          "flow.pt: tensor 'encoder.embed.out.0.weight' has shape [7, 7] but the config expects ["),
      std::string::npos)
      << msg;
}

TEST(ParamSchema, MissingExtraAndIntegerTensorsAreErrors) {
  const auto dir = cosy::testing::write_small_model("schema-missing");
  rewrite(dir, "hift.pt", [](auto& t) { t.erase(t.begin()); });
  EXPECT_NE(error_of([&] {
              load_model_folder(dir);
            }).find("hift.pt: missing tensor 'm_source.l_linear.weight'"),
            std::string::npos);

  const auto dir2 = cosy::testing::write_small_model("schema-extra");
  rewrite(dir2, "llm.pt",
          [](auto& t) { t.emplace_back("surprise.weight", Tensor::zeros(DType::F32, {2})); });
  EXPECT_NE(error_of([&] { load_model_folder(dir2); }).find("unexpected tensor 'surprise.weight'"),
            std::string::npos);

  const auto dir3 = cosy::testing::write_small_model("schema-dtype");
  rewrite(dir3, "llm.pt",
          [](auto& t) { t[0].second = Tensor::zeros(DType::I64, t[0].second.shape()); });
  EXPECT_NE(error_of([&] { load_model_folder(dir3); }).find("has dtype i64"), std::string::npos);
}

TEST(ParamSchema, AcceptsEveryWeightNormForm) {
  const auto dir = cosy::testing::write_small_model("schema-wn");
  // Old-style weight_g/_v names, and one weight already folded.
  rewrite(dir, "hift.pt", [](auto& t) {
    for (auto& [name, tensor] : t) {
      const auto p = name.find(".parametrizations.weight.original");
      if (p == std::string::npos) continue;
      const bool g = name.back() == '0';
      name = name.substr(0, p) + (g ? ".weight_g" : ".weight_v");
    }
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i].first == "conv_post.weight_g") {
        t.erase(t.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    for (auto& [name, tensor] : t) {
      if (name == "conv_post.weight_v") name = "conv_post.weight";
    }
  });
  EXPECT_NO_THROW(load_model_folder(dir));
}

}  // namespace
}  // namespace cosy
