// Subcommands of the cosyserve CLI. Each registers its options on the app and returns the
// function that runs it; the CLI is a thin user of the library underneath.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace cosy::tools {

using Command = std::function<int()>;

Command register_inspect(CLI::App& app);
Command register_make_model(CLI::App& app);
Command register_vocode(CLI::App& app);
Command register_synth(CLI::App& app);
Command register_bench(CLI::App& app);
Command register_tokenize(CLI::App& app);
Command register_serve(CLI::App& app);
Command register_voice(CLI::App& app);
Command register_loadtest(CLI::App& app);
Command register_profile(CLI::App& app);
Command register_plan(CLI::App& app);
Command register_audit(CLI::App& app);
Command register_tune(CLI::App& app);

}  // namespace cosy::tools
