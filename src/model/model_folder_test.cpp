#include "model/model_folder.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "model/test_model_util.h"

namespace cosy {
namespace {

using cosy::testing::error_of;

std::filesystem::path copy_of_small_model(const std::string& name) {
  return cosy::testing::write_small_model(name);
}

TEST(ModelFolder, LoadsTheFixtureFolderAsAUserWould) {
  COSY_NEED_GOLDEN();
  const ModelFolder m = load_model_folder(cosy::testing::golden_dir() / "model");
  EXPECT_GT(m.llm.size(), 0u);
  EXPECT_GT(m.flow.size(), 0u);
  EXPECT_GT(m.hift.size(), 0u);
  EXPECT_EQ(m.voices.has_value(),
            std::filesystem::exists(cosy::testing::golden_dir() / "model" / "spk2info.pt"));
}

TEST(ModelFolder, MissingPiecesNameTheFile) {
  EXPECT_NE(error_of([] { load_model_folder("/nonexistent/model"); }).find("not a directory"),
            std::string::npos);
  const auto dir = copy_of_small_model("folder-missing");
  std::filesystem::remove(dir / "flow.pt");
  EXPECT_NE(error_of([&] { load_model_folder(dir); }).find("flow.pt: missing (checkpoint)"),
            std::string::npos);
  std::filesystem::remove(dir / "CosyVoice-BlankEN" / "config.json");
  EXPECT_NE(error_of([&] { load_model_folder(dir); }).find("config.json: missing"),
            std::string::npos);
}

// The family is the yaml the folder holds, as the official AutoModel decides.
TEST(ModelFolder, TheYamlNamesTheFamily) {
  const auto dir = copy_of_small_model("folder-family");
  EXPECT_EQ(model_folder_family(dir), ModelFamily::CosyVoice2);
  std::filesystem::rename(dir / "cosyvoice2.yaml", dir / "other.yaml");
  const std::string none = error_of([&] { load_model_folder(dir); });
  EXPECT_NE(none.find("no cosyvoice2.yaml or cosyvoice3.yaml"), std::string::npos) << none;
  // A CosyVoice2 yaml under CosyVoice3's name: the classes are checked against the family.
  std::filesystem::copy_file(dir / "other.yaml", dir / "cosyvoice3.yaml");
  EXPECT_EQ(model_folder_family(dir), ModelFamily::CosyVoice3);
  const std::string wrong = error_of([&] { load_model_folder(dir); });
  EXPECT_NE(wrong.find("CosyVoice3LM' (CosyVoice3)"), std::string::npos) << wrong;
  std::filesystem::copy_file(dir / "other.yaml", dir / "cosyvoice.yaml");
  const std::string v1 = error_of([&] { load_model_folder(dir); });
  EXPECT_NE(v1.find("CosyVoice (version 1)"), std::string::npos) << v1;
}

TEST(ModelFolder, TruncatedOrCorruptCheckpointsAreClearErrors) {
  const auto dir = copy_of_small_model("folder-corrupt");
  const std::string bytes = read_whole_file(dir / "hift.pt");
  for (size_t cut : {bytes.size() / 3, bytes.size() - 10}) {
    write_whole_file(dir / "hift.pt", bytes.substr(0, cut));
    const std::string msg = error_of([&] { load_model_folder(dir); });
    EXPECT_NE(msg.find("hift.pt"), std::string::npos) << msg;
  }
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(~flipped[bytes.size() / 2]);
  write_whole_file(dir / "hift.pt", std::string(100, 'x'));
  EXPECT_NE(error_of([&] { load_model_folder(dir); }).find("not a zip archive"), std::string::npos);
}

TEST(ModelFolder, YamlSyntaxErrorsGiveFileAndLine) {
  const auto dir = copy_of_small_model("folder-yaml");
  std::string y = read_whole_file(dir / "cosyvoice2.yaml");
  y.insert(y.find("hift:"), "broken: [1, 2\n");
  write_whole_file(dir / "cosyvoice2.yaml", y);
  const std::string msg = error_of([&] { load_model_folder(dir); });
  EXPECT_NE(msg.find("cosyvoice2.yaml: yaml syntax error at line"), std::string::npos) << msg;
}

TEST(ModelFolder, BadVoicesAreRejected) {
  const auto dir = copy_of_small_model("folder-voices");
  const ModelConfig c = load_model_config(dir);
  auto save_voice = [&](int64_t dim) {
    SaveNode::Entries voice;
    voice.push_back({"embedding", SaveNode::tensor(Tensor::zeros(DType::F32, {1, dim}))});
    SaveNode::Entries root;
    root.push_back({"sft", SaveNode::dict(voice)});
    save_torch_file(dir / "spk2info.pt", "spk2info", SaveNode::dict(root));
  };
  save_voice(c.flow.spk_embed_dim + 1);
  EXPECT_NE(error_of([&] { load_model_folder(dir); }).find("voice 'sft': 'embedding' has shape"),
            std::string::npos);

  // An SFT voice holding only `embedding` is valid.
  save_voice(c.flow.spk_embed_dim);
  const ModelFolder m = load_model_folder(dir);
  ASSERT_TRUE(m.voices.has_value());
  EXPECT_FALSE(m.voices->find("sft")->is_zero_shot());
  EXPECT_TRUE(m.voices->find("sft")->has("embedding"));
}

}  // namespace
}  // namespace cosy
