// CLI11 reads `--config FILE.yaml` through this: a YAML mapping whose keys are the
// subcommand's flag names without the dashes (`max-streams: 8`, `api-key: [a, b]`). Values
// given on the command line win over the file's; an unknown key is an error.
#pragma once

#include <CLI/CLI.hpp>

namespace cosy::tools {

class YamlConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace cosy::tools
