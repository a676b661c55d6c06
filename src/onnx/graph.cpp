#include "onnx/graph.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "io/mapped_file.h"
#include "onnx.pb.h"
#include "onnx/op_registry.h"
#include "onnx/tensor_proto.h"

namespace cosy::onnx {

struct Model::Node {
  std::string name;
  std::string op_type;
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  std::vector<int> frees;    // values last used here, released after it runs
  std::unique_ptr<OpKernel> kernel;

  std::string where() const { return cat("node '", name, "' (", op_type, ")"); }
};

Model::~Model() = default;

namespace {

// Rethrows an error from node `where`, keeping Unsupported apart from other errors.
template <typename Fn>
auto at_node(const std::string& where, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Unsupported& e) {
    throw Unsupported(where + ": " + e.what());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

AttributeValue attribute_value(const ::onnx::AttributeProto& a,
                               const std::shared_ptr<const void>& owner,
                               const std::filesystem::path& base_dir,
                               std::vector<std::shared_ptr<const void>>& keep_alive) {
  AttributeValue v;
  using A = ::onnx::AttributeProto;
  switch (a.type()) {
    case A::FLOAT:
      v.kind = AttributeValue::Kind::Float;
      v.f = a.f();
      break;
    case A::INT:
      v.kind = AttributeValue::Kind::Int;
      v.i = a.i();
      break;
    case A::STRING:
      v.kind = AttributeValue::Kind::String;
      v.s = a.s();
      break;
    case A::TENSOR:
      v.kind = AttributeValue::Kind::Tensor;
      v.t = tensor_from_proto(a.t(), owner, base_dir, keep_alive);
      break;
    case A::FLOATS:
      v.kind = AttributeValue::Kind::Floats;
      v.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case A::INTS:
      v.kind = AttributeValue::Kind::Ints;
      v.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case A::STRINGS:
      v.kind = AttributeValue::Kind::Strings;
      v.strings.assign(a.strings().begin(), a.strings().end());
      break;
    default:
      v.kind = AttributeValue::Kind::Other;
      v.other_type = A::AttributeType_IsValid(a.type())
                         ? A::AttributeType_Name(static_cast<A::AttributeType>(a.type()))
                         : "UNDEFINED";
  }
  return v;
}

ValueInfo value_info(const ::onnx::ValueInfoProto& v) {
  ValueInfo info;
  info.name = v.name();
  if (!v.type().has_tensor_type()) {
    throw Unsupported(cat("graph value '", v.name(),
                          "' is not a tensor (sequences, maps and optionals are not supported)"));
  }
  const auto& tt = v.type().tensor_type();
  std::optional<DType> dt = dtype_from_onnx(tt.elem_type());
  if (!dt) {
    throw Unsupported(cat("graph value '", v.name(), "' has element type ",
                          onnx_type_name(tt.elem_type()), ", which is not supported"));
  }
  info.dtype = *dt;
  if (tt.has_shape()) {
    info.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      info.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
    }
  }
  return info;
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::filesystem::path& path) {
  Blob bytes = map_file(path);
  return parse(bytes, path.parent_path(), path.string());
}

std::shared_ptr<const Model> Model::parse(const Blob& bytes, const std::filesystem::path& base_dir,
                                          const std::string& label) {
  std::shared_ptr<Model> m(new Model());
  m->label_ = label;
  try {
    m->build(bytes, base_dir);
  } catch (const Unsupported& e) {
    throw Unsupported(label + ": " + e.what());
  } catch (const Error& e) {
    throw Error(label + ": " + e.what());
  }
  return m;
}

void Model::build(const Blob& bytes, const std::filesystem::path& base_dir) {
  auto proto = std::make_shared<::onnx::ModelProto>();
  if (bytes.bytes.size() > static_cast<size_t>(INT32_MAX)) {
    fail("the file is ", bytes.bytes.size(),
         " bytes; protobuf reads at most 2 GiB (store weights as external data)");
  }
  if (!proto->ParseFromArray(bytes.bytes.data(), static_cast<int>(bytes.bytes.size()))) {
    fail("not an ONNX model (the protobuf does not parse: truncated or corrupt)");
  }
  keep_alive_.push_back(proto);
  if (!proto->has_graph()) fail("not an ONNX model (no graph)");
  if (proto->ir_version() < 3)
    fail("IR version ", proto->ir_version(), " is too old (3 or later is needed)");

  opset_ = -1;
  for (const auto& imp : proto->opset_import()) {
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset_ = imp.version();
  }
  if (opset_ < 0) throw Unsupported("the model imports no default-domain (ai.onnx) opset");
  if (opset_ > kMaxOpset || opset_ < 1) {
    throw Unsupported(
        cat("opset ", opset_, " is not supported (", kMinOpset, " to ", kMaxOpset, ")"));
  }

  const ::onnx::GraphProto& g = proto->graph();
  std::unordered_map<std::string, int> ids;
  auto id_of = [&](const std::string& name) {
    auto [it, inserted] = ids.emplace(name, static_cast<int>(value_names_.size()));
    if (inserted) value_names_.push_back(name);
    return it->second;
  };
  std::vector<std::optional<DType>> types;
  auto ensure_size = [&] {
    types.resize(value_names_.size());
    constants_.resize(value_names_.size());
    is_constant_.resize(value_names_.size());
  };

  for (const auto& init : g.initializer()) {
    const int id = id_of(init.name());
    ensure_size();
    if (is_constant_[id]) fail("initializer '", init.name(), "' appears twice");
    constants_[id] = tensor_from_proto(init, proto, base_dir, keep_alive_);
    is_constant_[id] = true;
    types[id] = constants_[id].dtype();
  }
  if (g.sparse_initializer_size() > 0) throw Unsupported("sparse initializers are not supported");
  for (const auto& in : g.input()) {
    if (ids.count(in.name()) && types[ids[in.name()]]) continue;  // an initializer listed as input
    ValueInfo info = value_info(in);
    const int id = id_of(in.name());
    ensure_size();
    types[id] = info.dtype;
    inputs_.push_back(std::move(info));
    input_ids_.push_back(id);
  }

  for (const auto& n : g.node()) {
    auto node = std::make_unique<Node>();
    node->name = n.name().empty() ? cat("#", nodes_.size(), " ", n.op_type()) : n.name();
    node->op_type = n.op_type();
    const std::string where = node->where();
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      throw Unsupported(cat(where, ": operator domain '", n.domain(), "' is not supported"));
    }
    const OpSpec* spec = find_op(n.op_type());
    if (spec == nullptr)
      throw Unsupported(cat(where, ": operator ", n.op_type(), " is not supported"));
    if (opset_ < spec->since_version) {
      throw Unsupported(cat(where, ": opset ", opset_, " selects an older version of ", n.op_type(),
                            " than the one implemented (", spec->since_version, ", opsets ",
                            kMinOpset, " to ", kMaxOpset, ")"));
    }
    const int nin = n.input_size();
    if (nin < spec->min_inputs || (spec->max_inputs >= 0 && nin > spec->max_inputs)) {
      fail(where, ": has ", nin, " inputs (", spec->min_inputs, " to ",
           spec->max_inputs < 0 ? std::string("any") : std::to_string(spec->max_inputs),
           " expected)");
    }
    std::vector<const Tensor*> consts;
    std::vector<bool> present;
    std::vector<std::optional<DType>> in_types;
    for (const std::string& name : n.input()) {
      if (name.empty()) {
        node->inputs.push_back(-1);
        consts.push_back(nullptr);
        present.push_back(false);
        in_types.emplace_back();
        continue;
      }
      auto it = ids.find(name);
      if (it == ids.end() || !types[it->second]) {
        fail(where, ": input '", name,
             "' is not produced before this node (the graph is not topologically sorted or the "
             "value is missing)");
      }
      node->inputs.push_back(it->second);
      consts.push_back(is_constant_[it->second] ? &constants_[it->second] : nullptr);
      present.push_back(true);
      in_types.push_back(types[it->second]);
    }
    std::map<std::string, AttributeValue> attr_values;
    for (const auto& a : n.attribute()) {
      if (!a.ref_attr_name().empty())
        throw Unsupported(cat(where, ": attribute references are not supported"));
      attr_values[a.name()] = attribute_value(a, proto, base_dir, keep_alive_);
    }
    Attributes attrs(where, std::move(attr_values));
    NodeBuild build(n.op_type(), node->name, opset_, attrs, consts,
                    static_cast<size_t>(n.output_size()));
    build.set_present(present);
    at_node(where, [&] {
      node->kernel = spec->make(build);
      for (const std::string& a : attrs.unread()) {
        throw Unsupported(cat("attribute '", a, "' is not supported"));
      }
      std::vector<DType> out_types = node->kernel->infer_types(in_types);
      if (out_types.size() < static_cast<size_t>(n.output_size())) {
        throw Unsupported(cat("only ", out_types.size(), " output(s) are supported, the node has ",
                              n.output_size()));
      }
      for (int o = 0; o < n.output_size(); ++o) {
        const std::string& name = n.output(o);
        if (name.empty()) {
          node->outputs.push_back(-1);
          continue;
        }
        if (ids.count(name) && types[ids[name]]) fail("output '", name, "' is produced twice");
        const int id = id_of(name);
        ensure_size();
        types[id] = out_types[o];
        node->outputs.push_back(id);
      }
    });
    // A Constant node's value is known now: later kernels can pack it as a weight.
    if (n.op_type() == "Constant" && !node->outputs.empty() && node->outputs[0] >= 0) {
      std::vector<Tensor> out(1);
      RunContext ctx{ThreadPool::global()};
      node->kernel->run(ctx, {}, out);
      constants_[node->outputs[0]] = out[0];
      is_constant_[node->outputs[0]] = true;
      continue;  // folded: it never runs again
    }
    nodes_.push_back(std::move(node));
  }

  for (const auto& out : g.output()) {
    auto it = ids.find(out.name());
    if (it == ids.end() || !types[it->second])
      fail("graph output '", out.name(), "' is never produced");
    ValueInfo info = value_info(out);
    if (info.dtype != *types[it->second]) {
      fail("graph output '", out.name(), "' is declared ", dtype_name(info.dtype),
           " but computed as ", dtype_name(*types[it->second]));
    }
    outputs_.push_back(std::move(info));
    output_ids_.push_back(it->second);
  }

  // Release each intermediate value after the last node that reads it.
  std::vector<int> last_use(value_names_.size(), -1);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (int id : nodes_[i]->inputs) {
      if (id >= 0) last_use[id] = static_cast<int>(i);
    }
    for (int id : nodes_[i]->outputs) {
      if (id >= 0 && last_use[id] < 0) last_use[id] = static_cast<int>(i);  // never read
    }
  }
  for (int id : output_ids_) last_use[id] = -2;
  for (size_t id = 0; id < last_use.size(); ++id) {
    if (last_use[id] >= 0 && !is_constant_[id]) {
      nodes_[last_use[id]]->frees.push_back(static_cast<int>(id));
    }
  }
}

std::map<std::string, int> Model::op_counts() const {
  std::map<std::string, int> counts;
  for (const auto& n : nodes_) counts[n->op_type]++;
  return counts;
}

void Model::check_input(size_t i, const Tensor& t) const {
  const ValueInfo& info = inputs_[i];
  if (t.dtype() != info.dtype) {
    fail(label_, ": input '", info.name, "' must be ", dtype_name(info.dtype), ", got ",
         dtype_name(t.dtype()));
  }
  if (!info.has_shape) return;
  if (t.rank() != info.dims.size()) {
    fail(label_, ": input '", info.name, "' must have rank ", info.dims.size(), ", got shape ",
         shape_str(t.shape()));
  }
  for (size_t d = 0; d < info.dims.size(); ++d) {
    if (info.dims[d] >= 0 && info.dims[d] != t.dim(d)) {
      fail(label_, ": input '", info.name, "' dimension ", d, " must be ", info.dims[d],
           ", got shape ", shape_str(t.shape()));
    }
  }
}

std::vector<Tensor> Model::run(std::span<const Tensor> inputs, ThreadPool& pool) const {
  if (inputs.size() != inputs_.size()) {
    fail(label_, ": ", inputs.size(), " inputs given, the model takes ", inputs_.size());
  }
  std::vector<Tensor> values = constants_;
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_input(i, inputs[i]);
    values[input_ids_[i]] = inputs[i].contiguous();
  }
  RunContext ctx{pool};
  std::vector<const Tensor*> in;
  std::vector<Tensor> out;
  for (const auto& node : nodes_) {
    in.clear();
    for (int id : node->inputs) in.push_back(id >= 0 ? &values[id] : nullptr);
    out.assign(node->outputs.size(), Tensor());
    at_node(node->where(), [&] { node->kernel->run(ctx, in, out); });
    for (size_t o = 0; o < node->outputs.size(); ++o) {
      if (node->outputs[o] >= 0) values[node->outputs[o]] = std::move(out[o]);
    }
    for (int id : node->frees) values[id] = Tensor();
  }
  std::vector<Tensor> result;
  for (int id : output_ids_) result.push_back(values[id]);
  return result;
}

}  // namespace cosy::onnx
