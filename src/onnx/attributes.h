// A node's attributes, read by name. The kernel factory reads the ones it knows; any left
// unread afterwards is an attribute the runtime does not implement, and the model is refused.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cosy::onnx {

struct AttributeValue {
  enum class Kind { Float, Int, String, Tensor, Floats, Ints, Strings, Other };
  Kind kind = Kind::Other;
  float f = 0;
  int64_t i = 0;
  std::string s;
  cosy::Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::string other_type;  // the proto type name of Kind::Other (GRAPH, SPARSE_TENSOR, ...)
};

class Attributes {
 public:
  Attributes(std::string where, std::map<std::string, AttributeValue> values)
      : where_(std::move(where)), values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  int64_t get_int(const std::string& name, int64_t fallback);
  int64_t require_int(const std::string& name);
  float get_float(const std::string& name, float fallback);
  std::string get_string(const std::string& name, const std::string& fallback);
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> fallback = {});
  std::optional<std::vector<int64_t>> maybe_ints(const std::string& name);
  std::vector<float> get_floats(const std::string& name);
  const cosy::Tensor* maybe_tensor(const std::string& name);
  // Marks an attribute as read without reading it (one the runtime accepts and ignores).
  void ignore(const std::string& name) { read_.insert({name, true}); }
  // Names of attributes nobody read.
  std::vector<std::string> unread() const;
  // "AttributeValue &" for Constant's many value_* forms.
  const AttributeValue* find(const std::string& name);

 private:
  const AttributeValue& expect(const std::string& name, AttributeValue::Kind kind);
  std::string where_;
  std::map<std::string, AttributeValue> values_;
  std::map<std::string, bool> read_;
};

}  // namespace cosy::onnx
