// Builds ONNX models in code: make-model's random-weight frontend models (the real
// architectures at any size) and tests. Weights are stored inline as raw_data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace cosy::onnx {

struct Attr {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>, std::string> value;
};

// A dimension of a graph input or output: a size or a symbolic name.
using Dim = std::variant<int64_t, std::string>;

class GraphBuilder {
 public:
  GraphBuilder(const std::string& graph_name, int64_t opset);
  ~GraphBuilder();
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

  std::string input(const std::string& name, DType dtype, const std::vector<Dim>& dims);
  void output(const std::string& value, DType dtype, const std::vector<Dim>& dims);
  // An initializer holding `t` (copied); returns its name.
  std::string weight(const std::string& name, const Tensor& t);
  std::string ints(const std::vector<int64_t>& values);  // an int64 initializer
  std::string scalar(float v);                           // a float32 scalar initializer
  // A node; returns the names of its `outputs` outputs (named after the node).
  std::vector<std::string> nodes(const std::string& op, const std::vector<std::string>& inputs,
                                 const std::vector<Attr>& attrs, int outputs);
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<Attr>& attrs = {}) {
    return nodes(op, inputs, attrs, 1)[0];
  }

  std::string serialize() const;
  void save(const std::filesystem::path& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cosy::onnx
