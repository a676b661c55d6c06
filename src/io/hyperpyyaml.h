// The subset of hyperpyyaml that CosyVoice's released yaml files use: YAML maps, lists
// and scalars, `!ref <key>` (with arithmetic such as `<a> * <b>`), `!copy`, and class tags
// (`!new:pkg.Class`, `!name:pkg.fn`, `!apply:pkg.fn`) kept as typed nodes with their
// arguments. Nothing is imported or called.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cosy::yaml {

struct Node {
  enum class Type { Null, Scalar, Sequence, Mapping };

  Type type = Type::Null;
  std::string tag;      // "" for plain nodes, else e.g. "!new:cosyvoice.llm.llm.Qwen2LM"
  std::string scalar;   // scalar text as written
  bool quoted = false;  // quoted scalars are always strings
  std::vector<std::shared_ptr<Node>> items;
  std::vector<std::pair<std::string, std::shared_ptr<Node>>> entries;
  std::string path;  // "flow.decoder.estimator", for messages
  size_t line = 0;   // 1-based source line

  bool is_null() const { return type == Type::Null; }
  bool is_scalar() const { return type == Type::Scalar; }
  bool is_sequence() const { return type == Type::Sequence; }
  bool is_mapping() const { return type == Type::Mapping; }

  // "!new" / "!name" / "!apply" for class tags, else "".
  std::string tag_kind() const;
  // The dotted target of a class tag: "cosyvoice.llm.llm.Qwen2LM".
  std::string tag_target() const;

  const Node* find(const std::string& key) const;
  // The child under `key`, or an error naming the full path and line.
  const Node& at(const std::string& key) const;

  int64_t as_int() const;
  double as_double() const;
  bool as_bool() const;
  std::string as_string() const;
  std::vector<int64_t> as_int_list() const;
  std::vector<std::vector<int64_t>> as_int_matrix() const;

  std::string where() const;  // "'flow.input_size' (line 12)"
};

class Document {
 public:
  const Node& root() const { return *root_; }
  const std::string& label() const { return label_; }

 private:
  friend Document parse(std::string_view text, const std::string& label);
  std::shared_ptr<Node> root_;
  std::string label_;
};

// Parses and resolves references. Errors name `label` (the file) and the line.
Document parse(std::string_view text, const std::string& label);
Document load(const std::filesystem::path& path);

}  // namespace cosy::yaml
