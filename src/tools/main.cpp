// cosyserve: CosyVoice2 text-to-speech engine and server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "core/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"cosyserve: CosyVoice2 text-to-speech engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(COSY_VERSION));

  std::vector<std::pair<CLI::App*, cosy::tools::Command>> commands;
  auto add = [&](const char* name, const char* help, auto reg) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands.emplace_back(sub, reg(*sub));
  };
  add("inspect", "Print a model folder's configuration, parameters and voices", cosy::tools::register_inspect);
  add("make-model", "Write a random-weight model folder in the official layout", cosy::tools::register_make_model);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
  } catch (const cosy::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
