#include "onnx/graph_builder.h"

#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "onnx.pb.h"
#include "onnx/tensor_proto.h"

namespace cosy::onnx {

struct GraphBuilder::Impl {
  ::onnx::ModelProto model;
  int counter = 0;
  ::onnx::GraphProto* graph() { return model.mutable_graph(); }
  std::string fresh(const std::string& base) { return base + "_" + std::to_string(counter++); }
};

namespace {

void set_type(::onnx::ValueInfoProto* v, DType dtype, const std::vector<Dim>& dims) {
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(dtype));
  auto* shape = tt->mutable_shape();
  for (const Dim& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

}  // namespace

GraphBuilder::GraphBuilder(const std::string& graph_name, int64_t opset)
    : impl_(std::make_unique<Impl>()) {
  impl_->model.set_ir_version(8);
  impl_->model.set_producer_name("cosyserve make-model");
  impl_->model.add_opset_import()->set_version(opset);
  impl_->graph()->set_name(graph_name);
}

GraphBuilder::~GraphBuilder() = default;

std::string GraphBuilder::input(const std::string& name, DType dtype,
                                const std::vector<Dim>& dims) {
  auto* v = impl_->graph()->add_input();
  v->set_name(name);
  set_type(v, dtype, dims);
  return name;
}

void GraphBuilder::output(const std::string& value, DType dtype, const std::vector<Dim>& dims) {
  auto* v = impl_->graph()->add_output();
  v->set_name(value);
  set_type(v, dtype, dims);
}

std::string GraphBuilder::weight(const std::string& name, const Tensor& t) {
  auto* init = impl_->graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) init->add_dims(d);
  const Tensor c = t.contiguous();
  init->set_raw_data(std::string(reinterpret_cast<const char*>(c.raw()), c.nbytes()));
  return name;
}

std::string GraphBuilder::ints(const std::vector<int64_t>& values) {
  Tensor t = Tensor::zeros(DType::I64, {static_cast<int64_t>(values.size())});
  if (!values.empty()) std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(int64_t));
  return weight(impl_->fresh("const_ints"), t);
}

std::string GraphBuilder::scalar(float v) {
  Tensor t = Tensor::zeros(DType::F32, {});
  t.mutable_data<float>()[0] = v;
  return weight(impl_->fresh("const_scalar"), t);
}

std::vector<std::string> GraphBuilder::nodes(const std::string& op,
                                             const std::vector<std::string>& inputs,
                                             const std::vector<Attr>& attrs, int outputs) {
  auto* n = impl_->graph()->add_node();
  const std::string name = impl_->fresh("/" + op);
  n->set_name(name);
  n->set_op_type(op);
  for (const std::string& in : inputs) n->add_input(in);
  std::vector<std::string> outs;
  for (int i = 0; i < outputs; ++i) {
    outs.push_back(name + "_output_" + std::to_string(i));
    n->add_output(outs.back());
  }
  for (const Attr& a : attrs) {
    auto* pa = n->add_attribute();
    pa->set_name(a.name);
    if (const auto* i = std::get_if<int64_t>(&a.value)) {
      pa->set_type(::onnx::AttributeProto::INT);
      pa->set_i(*i);
    } else if (const auto* f = std::get_if<float>(&a.value)) {
      pa->set_type(::onnx::AttributeProto::FLOAT);
      pa->set_f(*f);
    } else if (const auto* v = std::get_if<std::vector<int64_t>>(&a.value)) {
      pa->set_type(::onnx::AttributeProto::INTS);
      for (int64_t x : *v) pa->add_ints(x);
    } else {
      pa->set_type(::onnx::AttributeProto::STRING);
      pa->set_s(std::get<std::string>(a.value));
    }
  }
  return outs;
}

std::string GraphBuilder::serialize() const {
  std::string out;
  if (!impl_->model.SerializeToString(&out))
    fail("the ONNX model could not be serialised (over 2 GiB?)");
  return out;
}

void GraphBuilder::save(const std::filesystem::path& path) const {
  write_whole_file(path, serialize());
}

}  // namespace cosy::onnx
