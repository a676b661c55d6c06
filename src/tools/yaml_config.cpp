#include "tools/yaml_config.h"

#include <sstream>

#include "core/error.h"
#include "io/hyperpyyaml.h"

namespace cosy::tools {

std::string YamlConfig::to_config(const CLI::App* app, bool default_also, bool, std::string) const {
  std::ostringstream out;
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || opt->get_configurable() == false) continue;
    const std::string name = opt->get_lnames()[0];
    if (name == "help" || name == "config") continue;
    std::vector<std::string> values = opt->reduced_results();
    if (values.empty() && default_also && !opt->get_default_str().empty())
      values = {opt->get_default_str()};
    if (values.empty()) continue;
    out << name << ":";
    if (values.size() == 1 && opt->get_expected_max() <= 1) {
      out << " " << values[0] << "\n";
    } else {
      out << "\n";
      for (const auto& v : values) out << "  - " << v << "\n";
    }
  }
  return out.str();
}

std::vector<CLI::ConfigItem> YamlConfig::from_config(std::istream& input) const {
  std::ostringstream text;
  text << input.rdbuf();
  std::vector<CLI::ConfigItem> items;
  try {
    const yaml::Document doc = yaml::parse(text.str(), "--config");
    const yaml::Node& root = doc.root();
    if (root.is_null()) return items;
    if (!root.is_mapping())
      throw CLI::ConversionError(
          "--config: the YAML file must be a mapping of flag names to values");
    for (const auto& [key, node] : root.entries) {
      CLI::ConfigItem item;
      item.name = key;
      if (node->is_scalar()) {
        item.inputs = {node->scalar};
      } else if (node->is_sequence()) {
        for (const auto& v : node->items) {
          if (!v->is_scalar())
            throw CLI::ConversionError("--config: '" + key +
                                       "' must be a value or a list of values");
          item.inputs.push_back(v->scalar);
        }
      } else if (node->is_null()) {
        continue;
      } else {
        throw CLI::ConversionError("--config: '" + key + "' must be a value or a list of values");
      }
      items.push_back(std::move(item));
    }
  } catch (const Error& e) {
    throw CLI::ConversionError(std::string("--config: ") + e.what());
  }
  return items;
}

}  // namespace cosy::tools
