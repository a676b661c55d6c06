// cosyserve: CosyVoice2 text-to-speech engine.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/interrupt.h"

namespace {

struct Subcommand {
  const char* name;
  const char* help;
  cosy::tools::Command (*reg)(CLI::App&);
};

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> list = {
      {"synth", "Text to speech: a model folder and a voice in, an audio file out",
       cosy::tools::register_synth},
      {"serve", "Serve the OpenAI-compatible speech API over HTTP (POST /v1/audio/speech)",
       cosy::tools::register_serve},
      {"voice", "Add, list or remove the voices of a model folder (spk2info.pt)",
       cosy::tools::register_voice},
      {"inspect", "Print a model folder's configuration, parameters and voices",
       cosy::tools::register_inspect},
      {"make-model", "Write a random-weight model folder in the official layout",
       cosy::tools::register_make_model},
      {"bench", "Time a fixed synthesis workload per stage (offline and streaming)",
       cosy::tools::register_bench},
      {"loadtest", "Many streams at once, measured as listeners hear them (closed or open loop)",
       cosy::tools::register_loadtest},
      {"profile", "Where the time went in a --trace file: stages, bubbles, queues, first chunks",
       cosy::tools::register_profile},
      {"plan", "How many instances a traffic profile needs, from a loadtest sweep",
       cosy::tools::register_plan},
      {"audit",
       "Compare each reduced weight format with fp32 and scan the weights for fp16 hazards",
       cosy::tools::register_audit},
      {"tune", "Measure the fastest GEMM kernel per weight shape on this machine (tuning file)",
       cosy::tools::register_tune},
      {"tokenize", "Show the normalised text, segments and token ids the LM would get",
       cosy::tools::register_tokenize},
      {"vocode", "Turn a mel spectrogram (.npy) into a waveform with the HiFT vocoder",
       cosy::tools::register_vocode},
  };
  return list;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The first argument, when it is not an option, must name a subcommand.
void check_subcommand(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  const std::string word = argv[1];
  std::vector<std::string> names;
  std::string nearest;
  size_t nearest_distance = 3;  // suggest only close matches
  for (const Subcommand& s : subcommands()) {
    if (word == s.name) return;
    names.emplace_back(s.name);
    if (const size_t d = edit_distance(word, s.name); d < nearest_distance) {
      nearest_distance = d;
      nearest = s.name;
    }
  }
  cosy::tools::usage_fail(
      "unknown command '", word, "'", nearest.empty() ? "" : " (did you mean '" + nearest + "'?)",
      "; the commands are ", cosy::tools::join(names, ", "), " (cosyserve --help describes them)");
}

int run(int argc, char** argv) {
  check_subcommand(argc, argv);
  CLI::App app{"cosyserve: CosyVoice2 text-to-speech engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(COSY_VERSION));

  std::vector<std::pair<CLI::App*, cosy::tools::Command>> commands;
  for (const Subcommand& s : subcommands()) {
    CLI::App* sub = app.add_subcommand(s.name, s.help);
    commands.emplace_back(sub, s.reg(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RequiredError& e) {
    if (argc < 2) {  // no command at all: say what there is
      std::fprintf(stderr, "%s", app.help().c_str());
      return cosy::tools::kUsageExit;
    }
    throw cosy::tools::UsageError(e.what());
  } catch (const CLI::ParseError& e) {
    throw cosy::tools::UsageError(e.what());
  }
  for (auto& [sub, command] : commands) {
    if (sub->parsed()) return command();
  }
  return cosy::tools::kUsageExit;
}

// The subcommand named on the command line, for the hint after a usage error.
std::string help_hint(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    for (const Subcommand& s : subcommands()) {
      if (argv[i] == std::string(s.name)) return std::string("cosyserve ") + s.name + " --help";
    }
  }
  return "cosyserve --help";
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts, so that every thread inherits the blocked signals.
  cosy::tools::block_interrupts();
  try {
    return run(argc, argv);
  } catch (const cosy::tools::UsageError& e) {
    std::fprintf(stderr, "error: %s\n(%s lists the options)\n", e.what(),
                 help_hint(argc, argv).c_str());
    return cosy::tools::kUsageExit;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "error: unknown failure\n");
  }
  return 1;
}
