// What every subcommand shares: usage errors (exit status 2, as for a bad flag) apart from
// runtime errors (exit status 1), and option lists built from the code that parses them,
// so that --help cannot drift from what is accepted.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace CLI {
class App;
}  // namespace CLI

namespace cosy {
class Engine;
class TraceWriter;
struct BeamSearchOptions;
struct QualityGuardOptions;
struct QualityReport;
}  // namespace cosy

namespace cosy::tools {

// Exit status of every usage error: an unknown command or flag, a bad or clashing value.
inline constexpr int kUsageExit = 2;

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

template <typename... Args>
[[noreturn]] void usage_fail(Args&&... args) {
  throw UsageError(cat(std::forward<Args>(args)...));
}

// "a | b | c"
std::string join(const std::vector<std::string>& names, const char* separator = " | ");

// The names of every weight format (fp32, fp16, ...), as parse_weight_format takes them.
std::vector<std::string> weight_format_names();
// weight_format_names() and "auto": what --weights, --flow-weights and --hift-weights take.
std::vector<std::string> weight_choice_names();
// The sampling methods, as parse_sampling_method takes them.
std::vector<std::string> sampling_method_names();

// --trace FILE: the engine's Chrome trace-event JSON from now on, sync points included. The
// caller closes it (close() reports a failed write) when its work is done.
std::shared_ptr<TraceWriter> start_trace(Engine& engine, const std::string& file);

// The compute threads a --threads value means (0: the process-wide pool's).
int compute_threads(int requested);
// --tuning FILE, and installing it (kernels/kernel_tuning.h) for the commands that load a
// model: the message (what is installed, or why the defaults run) goes to stderr when
// `always_say`, or when it is a warning or names a file the user gave. Returned too.
void add_tuning_option(CLI::App& app, std::string& file);
std::string apply_kernel_tuning(const std::string& file, int threads, bool always_say = false);

// --allow-formats LIST: the weight formats `auto` may pick besides fp32 (default none).
void add_allow_formats_option(CLI::App& app, std::string& allowed);

struct StageWeightFormats {
  WeightFormat llm = WeightFormat::F32, flow = WeightFormat::F32, hift = WeightFormat::F32;
  std::vector<std::string> lines;  // for each "auto" stage: "flow: auto -> fp32 (...)"
};
// Each stage's format: as named, or for "auto" the fastest of fp32 and --allow-formats in
// the tuning file's measurement of this model on this machine (kernels/kernel_tuning.h).
// The lines also go to stderr.
StageWeightFormats resolve_weight_formats(const std::string& model, const std::string& llm,
                                          const std::string& flow, const std::string& hift,
                                          const std::string& allowed,
                                          const std::string& tuning_file, int threads);

// --guard and its --guard-* settings (runtime/quality_guard.h), into `guard`.
void add_guard_options(CLI::App& app, QualityGuardOptions& guard);
// --num-beams and --length-penalty (beam search instead of sampling).
void add_beam_options(CLI::App& app, BeamSearchOptions& beams);
// The guard's report as one line for a person: "quality: guard on; detected ...".
std::string quality_line(const QualityReport& r);

}  // namespace cosy::tools
