// An ONNX model loaded for execution: the graph, its weights (read-only, shared by every
// run) and one kernel per node, each checked when the model loads. A run keeps its
// intermediate values to itself, so one Model serves any number of threads at once.
//
//   auto model = onnx::Model::load("campplus.onnx");
//   std::vector<Tensor> out = model->run({features});
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "io/blob.h"
#include "onnx/op_kernel.h"

namespace cosy::onnx {

// A graph input or output as the file declares it. Dimensions the file leaves symbolic
// (a dim_param such as "T") are -1 with their name kept.
struct ValueInfo {
  std::string name;
  DType dtype = DType::F32;
  bool has_shape = false;
  Shape dims;
  std::vector<std::string> dim_names;
};

class Model {
 public:
  // Reads and checks a .onnx file; weights stored as external data are mapped, not copied.
  static std::shared_ptr<const Model> load(const std::filesystem::path& path);
  // The same from bytes in memory; external data is looked up under `base_dir`.
  static std::shared_ptr<const Model> parse(const Blob& bytes,
                                            const std::filesystem::path& base_dir,
                                            const std::string& label);
  ~Model();

  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  const std::vector<ValueInfo>& outputs() const { return outputs_; }
  int64_t opset() const { return opset_; }
  // Node counts by op_type, in name order.
  std::map<std::string, int> op_counts() const;

  // Runs the graph on the inputs, in the order of inputs(); returns outputs() in order.
  // Inputs must have the declared element types and ranks and match fixed dimensions.
  std::vector<Tensor> run(std::span<const Tensor> inputs,
                          ThreadPool& pool = ThreadPool::global()) const;

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

 private:
  Model() = default;
  struct Node;
  void build(const Blob& bytes, const std::filesystem::path& base_dir);
  void check_input(size_t i, const Tensor& t) const;

  std::string label_;
  int64_t opset_ = 0;
  std::vector<ValueInfo> inputs_;
  std::vector<ValueInfo> outputs_;
  std::vector<std::string> value_names_;
  std::vector<Tensor> constants_;  // by value id: initializers and Constant outputs
  std::vector<bool> is_constant_;
  std::vector<int> input_ids_;
  std::vector<int> output_ids_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::shared_ptr<const void>> keep_alive_;  // parsed proto, external mappings
};

}  // namespace cosy::onnx
