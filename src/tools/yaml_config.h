// `--config FILE.yaml` for a subcommand: a YAML mapping whose keys are the subcommand's flag
// names without the dashes (`max-streams: 8`, `api-key: [a, b]`). Applied after the command
// line is parsed, to the flags the command line did not give (so flags win), through each
// flag's own validators. An unknown key or a bad value is a usage error naming the file.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>

namespace cosy::tools {

void apply_yaml_config(CLI::App& app, const std::filesystem::path& file);

}  // namespace cosy::tools
