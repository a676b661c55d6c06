#include "tools/yaml_config.h"

#include "core/error.h"
#include "io/hyperpyyaml.h"
#include "tools/cli_support.h"

namespace cosy::tools {

void apply_yaml_config(CLI::App& app, const std::filesystem::path& file) {
  const std::string label = "--config " + file.string();
  yaml::Document doc = [&] {
    try {
      return yaml::load(file);
    } catch (const Error& e) {
      usage_fail(label, ": ", e.what());
    }
  }();
  const yaml::Node& root = doc.root();
  if (root.is_null()) return;
  if (!root.is_mapping()) usage_fail(label, ": the file must be a mapping of flag names to values");
  for (const auto& [key, node] : root.entries) {
    CLI::Option* opt = app.get_option_no_throw("--" + key);
    if (opt == nullptr || key == "config" || key == "help") {
      usage_fail(label, ": unknown key '", key, "' (keys are this command's flag names)");
    }
    if (opt->count() > 0) continue;  // given on the command line: the flag wins
    std::vector<std::string> values;
    if (node->is_scalar()) {
      values = {node->scalar};
    } else if (node->is_sequence()) {
      for (const auto& v : node->items) {
        if (!v->is_scalar()) usage_fail(label, ": '", key, "' must be a value or a list of values");
        values.push_back(v->scalar);
      }
    } else if (node->is_null()) {
      continue;
    } else {
      usage_fail(label, ": '", key, "' must be a value or a list of values");
    }
    try {
      for (const auto& v : values) opt->add_result(v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      usage_fail(label, ": '", key, "': ", e.what());
    }
  }
}

}  // namespace cosy::tools
