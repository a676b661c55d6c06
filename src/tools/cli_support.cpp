#include "tools/cli_support.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/backend.h"
#include "runtime/engine.h"
#include "runtime/quality_guard.h"
#include "runtime/sampler.h"
#include "runtime/trace.h"

namespace cosy::tools {

std::string join(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : separator) + n;
  return out;
}

std::vector<std::string> weight_format_names() {
  std::vector<std::string> names;
  for (const WeightFormat f : all_weight_formats()) names.emplace_back(weight_format_name(f));
  return names;
}

std::vector<std::string> sampling_method_names() {
  std::vector<std::string> names;
  for (const SamplingMethod m :
       {SamplingMethod::Ras, SamplingMethod::TopKTopP, SamplingMethod::Greedy}) {
    names.emplace_back(sampling_method_name(m));
  }
  return names;
}

std::shared_ptr<TraceWriter> start_trace(Engine& engine, const std::string& file) {
  auto writer = std::make_shared<TraceWriter>(file);
  writer->listen_for_sync_points();
  engine.set_trace(writer);
  return writer;
}

void add_beam_options(CLI::App& app, BeamSearchOptions& b) {
  app.add_option("--num-beams", b.num_beams,
                 "Beam search over this many hypotheses instead of sampling (1: sample); "
                 "streaming sends the prefix the beams share")
      ->check(CLI::Range(int64_t{1}, BeamSearchOptions::kMaxBeams))
      ->capture_default_str();
  app.add_option("--length-penalty", b.length_penalty,
                 "Beam search: finished scores are divided by length^this")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
}

void add_guard_options(CLI::App& app, QualityGuardOptions& g) {
  const char* group = "Quality guard";
  app.add_flag("--guard,!--no-guard", g.enabled,
               "Watch the LM's tokens and repair runs, loops, silence, babble and over-long "
               "segments before they reach the audio")
      ->group(group)
      ->capture_default_str();
  app.add_option("--guard-max-run", g.max_run, "Identical speech tokens in a row, at most")
      ->group(group)
      ->capture_default_str();
  app.add_option("--guard-loop-repeats", g.loop_repeats,
                 "Times a short period (2-12 tokens) may repeat, at most (K >= 2)")
      ->group(group)
      ->capture_default_str();
  app.add_option("--guard-silent-tokens", g.silent_tokens,
                 "Speech token ids that are silence (comma-separated)")
      ->group(group)
      ->delimiter(',');
  app.add_option("--guard-max-silent-run", g.max_silent_run, "Silent tokens in a row, at most")
      ->group(group)
      ->capture_default_str();
  app.add_option("--guard-lookahead", g.lookahead,
                 "Tokens the flow stays behind the LM, so a rollback never takes back audio")
      ->group(group)
      ->capture_default_str();
  app.add_flag("--guard-rollback,!--guard-no-rollback", g.rollback,
               "Roll back and resample after repeated masks or babble")
      ->group(group)
      ->capture_default_str();
  app.add_option("--guard-max-regenerations", g.max_regenerations,
                 "Regenerations of a segment's uncommitted tokens, at most")
      ->group(group)
      ->capture_default_str();
  app.add_flag("--guard-end-on-ratio,!--guard-no-end-on-ratio", g.end_on_ratio,
               "End a segment at the top of the length band its voice implies")
      ->group(group)
      ->capture_default_str();
}

std::string quality_line(const QualityReport& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "quality: guard %s; detected run %lld, loop %lld, silence %lld, babble %lld, "
                "ratio %lld, non-finite %lld; masked %lld, rollbacks %lld (%lld tokens), "
                "regenerations %lld, ended %lld; longest run %lld; entropy mean %.2f max %.2f; "
                "%.2f speech tokens per text token",
                r.enabled ? "on" : "off", static_cast<long long>(r.runs),
                static_cast<long long>(r.loops), static_cast<long long>(r.silences),
                static_cast<long long>(r.babble), static_cast<long long>(r.ratio),
                static_cast<long long>(r.nonfinite), static_cast<long long>(r.masked),
                static_cast<long long>(r.rollbacks), static_cast<long long>(r.rolled_back_tokens),
                static_cast<long long>(r.regenerations), static_cast<long long>(r.ended),
                static_cast<long long>(r.longest_run), r.entropy_mean(), r.entropy_max,
                r.length_ratio());
  return buf;
}

}  // namespace cosy::tools
