// cosyserve: CosyVoice2 text-to-speech engine and server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "core/error.h"
#include "tools/commands.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"cosyserve: CosyVoice2 text-to-speech engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(COSY_VERSION));

  std::vector<std::pair<CLI::App*, cosy::tools::Command>> commands;
  auto add = [&](const char* name, const char* help, auto reg) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands.emplace_back(sub, reg(*sub));
  };
  add("inspect", "Print a model folder's configuration, parameters and voices",
      cosy::tools::register_inspect);
  add("make-model", "Write a random-weight model folder in the official layout",
      cosy::tools::register_make_model);
  add("synth", "Text to speech: a model folder and a voice in, an audio file out",
      cosy::tools::register_synth);
  add("bench", "Time a fixed synthesis workload per stage (offline and streaming)",
      cosy::tools::register_bench);
  add("tokenize", "Show the normalised text, segments and token ids the LM would get",
      cosy::tools::register_tokenize);
  add("vocode", "Turn a mel spectrogram (.npy) into a waveform with the HiFT vocoder",
      cosy::tools::register_vocode);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, command] : commands) {
    if (sub->parsed()) return command();
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "error: unknown failure\n");
  }
  return 1;
}
