#include "io/hyperpyyaml.h"

#include <yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/ref_expression.h"

namespace cosy::yaml {
namespace {

constexpr int kMaxDepth = 100;
constexpr size_t kMaxNodes = 1'000'000;  // bounds alias expansion ("billion laughs")
constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

class Converter {
 public:
  Converter(yaml_document_t* doc, const std::string& label) : doc_(doc), label_(label) {}

  std::shared_ptr<Node> convert(yaml_node_t* n, const std::string& path, int depth) {
    if (depth > kMaxDepth)
      fail(label_, ": nesting deeper than ", kMaxDepth, " levels at '", path, "'");
    if (++count_ > kMaxNodes) fail(label_, ": more than ", kMaxNodes, " nodes (alias expansion?)");
    auto out = std::make_shared<Node>();
    out->path = path;
    out->line = n->start_mark.line + 1;
    const std::string tag = n->tag != nullptr ? reinterpret_cast<const char*>(n->tag) : "";
    if (tag.rfind(kCoreTagPrefix, 0) != 0) out->tag = tag;
    switch (n->type) {
      case YAML_SCALAR_NODE: {
        out->scalar.assign(reinterpret_cast<const char*>(n->data.scalar.value),
                           n->data.scalar.length);
        out->quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                      n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                      n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        const bool null_text = out->scalar.empty() || out->scalar == "~" || out->scalar == "null" ||
                               out->scalar == "Null" || out->scalar == "NULL";
        const bool tagged_string = !out->tag.empty() || out->quoted;
        out->type = (null_text && !tagged_string && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                        ? Node::Type::Null
                        : Node::Type::Scalar;
        // A bare class tag with no arguments ("!new:pkg.Class") parses as an empty scalar.
        if (!out->tag.empty() && out->tag != "!ref" && out->tag != "!copy" && out->scalar.empty()) {
          out->type = Node::Type::Mapping;
        }
        break;
      }
      case YAML_SEQUENCE_NODE: {
        out->type = Node::Type::Sequence;
        size_t i = 0;
        for (yaml_node_item_t* it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             ++it, ++i) {
          out->items.push_back(convert(node(*it), path + "[" + std::to_string(i) + "]", depth + 1));
        }
        break;
      }
      case YAML_MAPPING_NODE: {
        out->type = Node::Type::Mapping;
        for (yaml_node_pair_t* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             ++p) {
          yaml_node_t* k = node(p->key);
          if (k->type != YAML_SCALAR_NODE)
            fail(label_, ": line ", k->start_mark.line + 1, ": mapping key is not a scalar");
          std::string key(reinterpret_cast<const char*>(k->data.scalar.value),
                          k->data.scalar.length);
          for (const auto& [existing, unused] : out->entries) {
            if (existing == key)
              fail(label_, ": line ", k->start_mark.line + 1, ": duplicate key '", key, "'");
          }
          auto child = convert(node(p->value), path.empty() ? key : path + "." + key, depth + 1);
          out->entries.emplace_back(std::move(key), std::move(child));
        }
        break;
      }
      default:
        fail(label_, ": line ", out->line, ": empty node");
    }
    return out;
  }

 private:
  yaml_node_t* node(int id) {
    yaml_node_t* n = yaml_document_get_node(doc_, id);
    if (n == nullptr) fail(label_, ": dangling node reference");
    return n;
  }
  yaml_document_t* doc_;
  const std::string& label_;
  size_t count_ = 0;
};

// Replaces `!ref` / `!copy` scalars by what they reference, evaluating arithmetic.
class Resolver {
 public:
  Resolver(std::shared_ptr<Node> root, const std::string& label)
      : root_(std::move(root)), label_(label) {}

  std::shared_ptr<Node> resolve(const std::shared_ptr<Node>& n, int depth) {
    if (depth > kMaxDepth)
      fail(label_, ": references nest deeper than ", kMaxDepth, " levels (a cycle?) at ",
           n->where());
    if (done_.count(n.get()) != 0) return n;
    if (n->is_scalar() && (n->tag == "!ref" || n->tag == "!copy")) return resolve_ref(*n, depth);
    if (!in_progress_.insert(n.get()).second)
      fail(label_, ": reference cycle through ", n->where());
    for (auto& item : n->items) item = resolve(item, depth + 1);
    for (auto& [key, child] : n->entries) child = resolve(child, depth + 1);
    in_progress_.erase(n.get());
    done_.insert(n.get());
    return n;
  }

 private:
  std::shared_ptr<Node> lookup(const std::string& key, const Node& from, int depth) {
    // Keys are top-level names, optionally with .sub or [sub] parts.
    std::shared_ptr<Node> cur = root_;
    std::string part;
    auto step = [&](const std::string& name) {
      if (name.empty()) return;
      if (!cur->is_mapping())
        fail(label_, ": !ref <", key, "> at ", from.where(), " goes through a non-mapping");
      std::shared_ptr<Node> next;
      for (auto& [k, child] : cur->entries) {
        if (k == name) {
          child = resolve(child, depth + 1);
          next = child;
        }
      }
      if (!next) fail(label_, ": !ref <", key, "> at ", from.where(), ": no key '", name, "'");
      cur = next;
    };
    for (char c : key) {
      if (c == '.' || c == '[' || c == ']') {
        step(part);
        part.clear();
      } else {
        part += c;
      }
    }
    step(part);
    // `<>` names the document itself, and a node still being resolved is an ancestor of
    // the reference: either would make the tree contain itself.
    if (cur == root_ || in_progress_.count(cur.get()) != 0)
      fail(label_, ": !ref <", key, "> at ", from.where(), " refers to its own ancestor");
    return cur;
  }

  std::shared_ptr<Node> resolve_ref(const Node& ref, int depth) {
    const std::string text = trim(ref.scalar);
    // A lone reference stands for the node itself (a number, a list, an object).
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>' &&
        text.find('<', 1) == std::string::npos) {
      return lookup(text.substr(1, text.size() - 2), ref, depth);
    }
    std::string substituted;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t open = text.find('<', pos);
      if (open == std::string::npos) {
        substituted += text.substr(pos);
        break;
      }
      const size_t close = text.find('>', open);
      if (close == std::string::npos) fail(label_, ": unterminated <key> in !ref at ", ref.where());
      substituted += text.substr(pos, open - pos);
      auto target = lookup(text.substr(open + 1, close - open - 1), ref, depth);
      if (target->is_null()) {
        substituted += "None";
      } else if (target->is_scalar()) {
        substituted += target->scalar;
      } else {
        fail(label_, ": !ref at ", ref.where(), " uses a non-scalar value inside an expression");
      }
      pos = close + 1;
    }
    auto out = std::make_shared<Node>();
    out->type = Node::Type::Scalar;
    out->path = ref.path;
    out->line = ref.line;
    const auto value =
        with_context(label_ + ": " + ref.where(), [&] { return evaluate_arithmetic(substituted); });
    if (value) {
      if (value->index() == 0) {
        out->scalar = std::to_string(std::get<0>(*value));
      } else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", std::get<1>(*value));
        out->scalar = buf;
      }
    } else {
      out->scalar = substituted;
      out->quoted = true;  // string interpolation, e.g. <dir>/file.txt
    }
    done_.insert(out.get());
    return out;
  }

  std::shared_ptr<Node> root_;
  const std::string& label_;
  std::unordered_set<const Node*> done_;
  std::unordered_set<const Node*> in_progress_;
};

}  // namespace

std::string Node::tag_kind() const {
  for (const char* k : {"!new", "!name", "!apply"}) {
    const std::string prefix = std::string(k) + ":";
    if (tag.rfind(prefix, 0) == 0) return k;
  }
  return "";
}

std::string Node::tag_target() const {
  const size_t colon = tag.find(':');
  return colon == std::string::npos ? "" : tag.substr(colon + 1);
}

std::string Node::where() const {
  return cat("'", path.empty() ? "<root>" : path, "' (line ", line, ")");
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, child] : entries) {
    if (k == key) return child.get();
  }
  return nullptr;
}

const Node& Node::at(const std::string& key) const {
  if (!is_mapping()) fail(where(), " is not a mapping (looking for '", key, "')");
  const Node* n = find(key);
  if (n == nullptr)
    fail("missing key '", path.empty() ? key : path + "." + key, "' (in ", where(), ")");
  return *n;
}

int64_t Node::as_int() const {
  if (!is_scalar() || quoted) fail(where(), " must be an integer");
  const char* s = scalar.c_str();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 0);
  if (end == s || *end != '\0' || errno == ERANGE)
    fail(where(), " must be an integer, not '", scalar, "'");
  return v;
}

double Node::as_double() const {
  if (!is_scalar() || quoted) fail(where(), " must be a number");
  static const std::pair<const char*, double> specials[] = {
      {".inf", HUGE_VAL},   {".Inf", HUGE_VAL}, {"-.inf", -HUGE_VAL},
      {"-.Inf", -HUGE_VAL}, {".nan", NAN},      {".NaN", NAN}};
  for (const auto& [name, v] : specials) {
    if (scalar == name) return v;
  }
  const char* s = scalar.c_str();
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0') fail(where(), " must be a number, not '", scalar, "'");
  return v;
}

bool Node::as_bool() const {
  if (is_scalar() && !quoted) {
    if (scalar == "true" || scalar == "True" || scalar == "TRUE") return true;
    if (scalar == "false" || scalar == "False" || scalar == "FALSE") return false;
  }
  fail(where(), " must be true or false");
}

std::string Node::as_string() const {
  if (!is_scalar()) fail(where(), " must be a string");
  return scalar;
}

std::vector<int64_t> Node::as_int_list() const {
  if (!is_sequence()) fail(where(), " must be a list of integers");
  std::vector<int64_t> out;
  for (const auto& item : items) out.push_back(item->as_int());
  return out;
}

std::vector<std::vector<int64_t>> Node::as_int_matrix() const {
  if (!is_sequence()) fail(where(), " must be a list of integer lists");
  std::vector<std::vector<int64_t>> out;
  for (const auto& item : items) out.push_back(item->as_int_list());
  return out;
}

Document parse(std::string_view text, const std::string& label) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) fail(label, ": cannot initialise the yaml parser");
  std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> parser_guard(&parser,
                                                                        yaml_parser_delete);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    fail(label, ": yaml syntax error at line ", parser.problem_mark.line + 1, ", column ",
         parser.problem_mark.column + 1, ": ",
         parser.problem != nullptr ? parser.problem : "unknown problem",
         parser.context != nullptr ? std::string(" (") + parser.context + ")" : std::string());
  }
  std::unique_ptr<yaml_document_t, void (*)(yaml_document_t*)> doc_guard(&doc,
                                                                         yaml_document_delete);
  yaml_node_t* root = yaml_document_get_root_node(&doc);
  if (root == nullptr) fail(label, ": empty yaml document");
  Document out;
  out.label_ = label;
  out.root_ = Converter(&doc, label).convert(root, "", 0);
  if (!out.root_->is_mapping()) fail(label, ": top level is not a mapping");
  out.root_ = Resolver(out.root_, label).resolve(out.root_, 0);
  return out;
}

Document load(const std::filesystem::path& path) {
  const Blob b = map_file(path);
  return parse(b.text(), path.string());
}

}  // namespace cosy::yaml
