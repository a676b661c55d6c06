#include "io/hyperpyyaml.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/test_support.h"

namespace cosy::yaml {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse(text, "t.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HyperPyYaml, ResolvesReferencesAndArithmetic) {
  const auto doc = parse(R"(
chunk_size: 25 # tokens
token_mel_ratio: 2
name: 'x'
left: -1
flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: 64
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
        left: !ref <left>
        ratio: !ref <chunk_size> / 2
        path: !ref <name>/file.txt
        cfm: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
reuse: !ref <flow>
pipeline: [
    !ref <tokenize>,
]
tokenize: !name:cosyvoice.dataset.processor.tokenize
bare: !name:cosyvoice.dataset.processor.parquet_opener
fmax: null
)",
                         "t.yaml");
  const Node& root = doc.root();
  const Node& flow = root.at("flow");
  EXPECT_EQ(flow.tag_kind(), "!new");
  EXPECT_EQ(flow.tag_target(), "cosyvoice.flow.flow.CausalMaskedDiffWithXvec");
  const Node& dec = flow.at("decoder");
  EXPECT_EQ(dec.at("static_chunk_size").as_int(), 50);
  EXPECT_EQ(dec.at("left").as_int(), -1);
  EXPECT_DOUBLE_EQ(dec.at("ratio").as_double(), 12.5);
  EXPECT_EQ(dec.at("path").as_string(), "x/file.txt");
  EXPECT_DOUBLE_EQ(dec.at("cfm").at("content").at("sigma_min").as_double(), 1e-6);
  EXPECT_EQ(dec.at("cfm").at("content").at("solver").as_string(), "euler");
  EXPECT_EQ(&root.at("reuse"), &flow);  // a lone reference is the node itself
  EXPECT_EQ(root.at("pipeline").items.at(0)->tag_target(), "cosyvoice.dataset.processor.tokenize");
  EXPECT_TRUE(root.at("bare").is_mapping());
  EXPECT_TRUE(root.at("fmax").is_null());
}

TEST(HyperPyYaml, TypedAccessorsRejectWrongTypes) {
  const auto doc = parse("a: 'text'\nb: 1.5\nc: [1, 2]\nd: True\n", "t.yaml");
  EXPECT_THROW(doc.root().at("a").as_int(), Error);
  EXPECT_THROW(doc.root().at("b").as_int(), Error);
  EXPECT_EQ(doc.root().at("c").as_int_list(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(doc.root().at("d").as_bool());
  try {
    doc.root().at("missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing key 'missing'"), std::string::npos);
  }
}

TEST(HyperPyYaml, ErrorsNameTheFileAndLine) {
  EXPECT_NE(error_of("a: 1\nb: [1, 2\n").find("t.yaml: yaml syntax error at line"),
            std::string::npos);
  EXPECT_NE(error_of("a: !ref <nope>\n").find("no key 'nope'"), std::string::npos);
  EXPECT_NE(error_of("a: !ref <b>\nb: !ref <a>\n").find("t.yaml"), std::string::npos);
  EXPECT_NE(error_of("a: 1\na: 2\n").find("duplicate key"), std::string::npos);
  EXPECT_NE(error_of("- 1\n- 2\n").find("not a mapping"), std::string::npos);
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("a: !ref <b> / 0\nb: 1\n").find("division by zero"), std::string::npos);
}

TEST(HyperPyYaml, HostileInputIsBounded) {
  std::string deep = "a: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_NE(error_of(deep).find("t.yaml"), std::string::npos);
  // Exponential alias expansion must stop at the node budget, not exhaust memory.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    const std::string n = std::to_string(i);
    bomb.append("a").append(n).append(": &a").append(n).append(" [");
    for (int j = 0; j < 10; ++j) {
      if (j) bomb += ", ";
      bomb += "*a";
      bomb += std::to_string(i - 1);
    }
    bomb += "]\n";
  }
  EXPECT_NE(error_of(bomb).find("nodes"), std::string::npos);
  // A reference to the document or to its own ancestor would make the tree contain
  // itself (a leak the fuzzer found); both are errors.
  EXPECT_NE(error_of("a: 1\nb: !ref <>\n").find("ancestor"), std::string::npos);
  EXPECT_NE(error_of("a:\n  b: [1, !ref <a>]\n").find("t.yaml"), std::string::npos);
}

TEST(HyperPyYaml, LoadsTheFixtureYaml) {
  COSY_NEED_GOLDEN();
  const auto doc = load(cosy::testing::golden_dir() / "model" / "cosyvoice2.yaml");
  const Node& root = doc.root();
  EXPECT_EQ(root.at("llm").tag_kind(), "!new");
  EXPECT_EQ(root.at("flow").tag_kind(), "!new");
  EXPECT_EQ(root.at("hift").tag_kind(), "!new");
  // The estimator's chunk size is written as an expression over two top-level keys.
  EXPECT_EQ(root.at("flow").at("decoder").at("estimator").at("static_chunk_size").as_int(),
            root.at("chunk_size").as_int() * root.at("token_mel_ratio").as_int());
}

}  // namespace
}  // namespace cosy::yaml
