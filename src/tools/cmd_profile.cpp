// cosyserve profile TRACE: where the time went in a trace written with --trace (serve,
// synth, bench, loadtest): stage shares, busy time, bubbles with their causes, queueing
// delay per stage, batch sizes, and the slowest first chunks.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/profile/trace_profile.h"

namespace cosy::tools {
namespace {

struct ProfileCmdOptions {
  std::string trace, json;
  double min_bubble_ms = 1;
  size_t top = 5;
};

int run_profile(const ProfileCmdOptions& o) {
  const std::string text = read_whole_file(o.trace);
  const auto trace = nlohmann::json::parse(text, nullptr, false);
  if (trace.is_discarded()) fail(o.trace, ": not JSON (a trace is Chrome trace-event JSON)");
  profile::ProfileOptions po;
  po.min_bubble_s = o.min_bubble_ms / 1000.0;
  po.top = o.top;
  const profile::TraceProfile p =
      with_context(o.trace, [&] { return profile::profile_trace(trace, po); });
  std::fputs(profile::format_profile(p).c_str(), stdout);
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << profile::to_json(p).dump(2) << "\n";
    if (!out) fail(o.json, ": cannot write");
  }
  return 0;
}

}  // namespace

Command register_profile(CLI::App& app) {
  auto o = std::make_shared<ProfileCmdOptions>();
  app.add_option("trace", o->trace, "A trace written with --trace")->required();
  app.add_option("--json", o->json, "Write the profile as JSON too");
  app.add_option("--min-bubble-ms", o->min_bubble_ms,
                 "Shorter gaps between stage calls are not bubbles")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--top", o->top, "Slowest first chunks to break down")->capture_default_str();
  return [o] { return run_profile(*o); };
}

}  // namespace cosy::tools
