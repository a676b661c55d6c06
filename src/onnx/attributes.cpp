#include "onnx/attributes.h"

#include "core/error.h"

namespace cosy::onnx {

namespace {
const char* kind_name(AttributeValue::Kind k) {
  switch (k) {
    case AttributeValue::Kind::Float:
      return "float";
    case AttributeValue::Kind::Int:
      return "int";
    case AttributeValue::Kind::String:
      return "string";
    case AttributeValue::Kind::Tensor:
      return "tensor";
    case AttributeValue::Kind::Floats:
      return "floats";
    case AttributeValue::Kind::Ints:
      return "ints";
    case AttributeValue::Kind::Strings:
      return "strings";
    case AttributeValue::Kind::Other:
      return "other";
  }
  return "?";
}
}  // namespace

const AttributeValue& Attributes::expect(const std::string& name, AttributeValue::Kind kind) {
  const AttributeValue& v = values_.at(name);
  read_[name] = true;
  if (v.kind != kind) {
    fail(where_, ": attribute '", name, "' is ", kind_name(v.kind), ", expected ", kind_name(kind));
  }
  return v;
}

const AttributeValue* Attributes::find(const std::string& name) {
  auto it = values_.find(name);
  if (it == values_.end()) return nullptr;
  read_[name] = true;
  return &it->second;
}

int64_t Attributes::get_int(const std::string& name, int64_t fallback) {
  return has(name) ? expect(name, AttributeValue::Kind::Int).i : fallback;
}

int64_t Attributes::require_int(const std::string& name) {
  if (!has(name)) fail(where_, ": the required attribute '", name, "' is missing");
  return expect(name, AttributeValue::Kind::Int).i;
}

float Attributes::get_float(const std::string& name, float fallback) {
  return has(name) ? expect(name, AttributeValue::Kind::Float).f : fallback;
}

std::string Attributes::get_string(const std::string& name, const std::string& fallback) {
  return has(name) ? expect(name, AttributeValue::Kind::String).s : fallback;
}

std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> fallback) {
  return has(name) ? expect(name, AttributeValue::Kind::Ints).ints : fallback;
}

std::optional<std::vector<int64_t>> Attributes::maybe_ints(const std::string& name) {
  if (!has(name)) return std::nullopt;
  return expect(name, AttributeValue::Kind::Ints).ints;
}

std::vector<float> Attributes::get_floats(const std::string& name) {
  return has(name) ? expect(name, AttributeValue::Kind::Floats).floats : std::vector<float>{};
}

const cosy::Tensor* Attributes::maybe_tensor(const std::string& name) {
  return has(name) ? &expect(name, AttributeValue::Kind::Tensor).t : nullptr;
}

std::vector<std::string> Attributes::unread() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : values_) {
    if (!read_.count(name)) out.push_back(name);
  }
  return out;
}

}  // namespace cosy::onnx
