// The ONNX loader and executor on small graphs built here: clear refusals for what the
// runtime does not implement, and clear errors for corrupt files and bad inputs.
#include "onnx/graph.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/test_support.h"
#include "onnx.pb.h"

namespace cosy::onnx {
namespace {

::onnx::ModelProto add_model(const std::string& op = "Add", int64_t opset = 17) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  for (const char* name : {"x", "y"}) {
    auto* in = g->add_input();
    in->set_name(name);
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
  }
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name("the_node");
  n->add_input("x");
  n->add_input("y");
  n->add_output("z");
  auto* out = g->add_output();
  out->set_name("z");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto::FLOAT);
  return m;
}

std::shared_ptr<const Model> parse(const ::onnx::ModelProto& m,
                                   const std::filesystem::path& dir = ".") {
  std::string bytes = m.SerializeAsString();
  return Model::parse(copy_blob(std::as_bytes(std::span(bytes.data(), bytes.size()))), dir,
                      "test.onnx");
}

Tensor vec(std::vector<float> v) {
  Tensor t = Tensor::zeros(DType::F32, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.mutable_data<float>());
  return t;
}

TEST(OnnxGraph, RunsASmallGraph) {
  auto model = parse(add_model());
  ASSERT_EQ(model->inputs().size(), 2u);
  EXPECT_EQ(model->inputs()[0].dim_names[0], "N");
  std::vector<Tensor> out = model->run(std::vector<Tensor>{vec({1, 2, 3}), vec({10, 20, 30})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to_float_vector(), (std::vector<float>{11, 22, 33}));
}

TEST(OnnxGraph, RefusesAnUnsupportedOperatorNamingTheNode) {
  try {
    parse(add_model("Einsum"));
    FAIL() << "loaded";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("the_node"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Einsum is not supported"), std::string::npos) << e.what();
  }
}

TEST(OnnxGraph, RefusesAnOpsetOutsideTheSupportedRange) {
  EXPECT_THROW(parse(add_model("Add", 11)), Unsupported);  // Add-7, before opset 13's Add-13
  EXPECT_NO_THROW(parse(add_model("PRelu", 11)));          // PRelu-9 is also opset 13's version
  EXPECT_THROW(parse(add_model("Add", 19)), Unsupported);
}

TEST(OnnxGraph, RefusesAnUnknownAttribute) {
  ::onnx::ModelProto m = add_model();
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("broadcast");
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(1);
  try {
    parse(m);
    FAIL() << "loaded";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("attribute 'broadcast'"), std::string::npos) << e.what();
  }
}

TEST(OnnxGraph, RefusesCorruptAndTruncatedFiles) {
  std::string bytes = add_model().SerializeAsString();
  for (size_t cut : {bytes.size() / 2, bytes.size() - 1, size_t{3}}) {
    std::string part = bytes.substr(0, cut);
    EXPECT_THROW(Model::parse(copy_blob(std::as_bytes(std::span(part.data(), part.size()))), ".",
                              "cut.onnx"),
                 Error)
        << cut;
  }
  std::string junk = "this is not a protobuf at all \xff\xff\xff\xff";
  EXPECT_THROW(
      Model::parse(copy_blob(std::as_bytes(std::span(junk.data(), junk.size()))), ".", "junk.onnx"),
      Error);
  const auto dir = testing::scratch_dir("onnx_graph_missing");
  EXPECT_THROW(Model::load(dir / "nothing.onnx"), Error);
}

TEST(OnnxGraph, ChecksInputsAgainstTheDeclaredTypes) {
  auto model = parse(add_model());
  Tensor ints = Tensor::zeros(DType::I64, {3});
  EXPECT_THROW(model->run(std::vector<Tensor>{ints, ints}), Error);
  EXPECT_THROW(model->run(std::vector<Tensor>{vec({1})}), Error);
  Tensor two_d = Tensor::zeros(DType::F32, {1, 3});
  EXPECT_THROW(model->run(std::vector<Tensor>{two_d, two_d}), Error);
  // Shapes that do not broadcast fail with the node's name.
  try {
    model->run(std::vector<Tensor>{vec({1, 2}), vec({1, 2, 3})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the_node"), std::string::npos) << e.what();
  }
}

TEST(OnnxGraph, ExternalDataStaysInsideTheModelFolder) {
  ::onnx::ModelProto m = add_model();
  auto* g = m.mutable_graph();
  g->mutable_input()->RemoveLast();
  auto* w = g->add_initializer();
  w->set_name("y");
  w->set_data_type(::onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->set_data_location(::onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("../outside.bin");
  const auto dir = testing::scratch_dir("onnx_external");
  EXPECT_THROW(parse(m, dir), Error);
  loc->set_value("weights.bin");
  std::vector<float> values{5, 6, 7};
  write_whole_file(dir / "weights.bin",
                   std::string(reinterpret_cast<const char*>(values.data()), 12));
  auto model = parse(m, dir);
  std::vector<Tensor> out = model->run(std::vector<Tensor>{vec({1, 1, 1})});
  EXPECT_EQ(out[0].to_float_vector(), (std::vector<float>{6, 7, 8}));
  write_whole_file(dir / "weights.bin", std::string(8, '\0'));  // truncated
  EXPECT_THROW(parse(m, dir), Error);
}

TEST(OnnxGraph, RefusesAGraphThatReadsAValueBeforeItIsMade) {
  ::onnx::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_input(1, "later");
  EXPECT_THROW(parse(m), Error);
}

}  // namespace
}  // namespace cosy::onnx
