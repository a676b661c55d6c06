#include "tools/cli_support.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/backend.h"
#include "core/thread_pool.h"
#include "kernels/kernel_tuning.h"
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

int compute_threads(int requested) {
  return requested > 0 ? requested : ThreadPool::global().num_threads();
}

std::vector<std::string> weight_choice_names() {
  auto names = weight_format_names();
  names.emplace_back("auto");
  return names;
}

void add_allow_formats_option(CLI::App& app, std::string& allowed) {
  app.add_option("--allow-formats", allowed,
                 "Reduced weight formats that `auto` may pick where measured faster (comma "
                 "list of " +
                     join(weight_format_names(), ", ") +
                     "; each has its documented fidelity; default: none, fp32 only)");
}

StageWeightFormats resolve_weight_formats(const std::string& model, const std::string& llm,
                                          const std::string& flow, const std::string& hift,
                                          const std::string& allowed_list,
                                          const std::string& tuning_file, int threads) {
  std::vector<WeightFormat> allowed = {WeightFormat::F32};
  std::string item;
  for (size_t i = 0; i <= allowed_list.size(); ++i) {
    if (i == allowed_list.size() || allowed_list[i] == ',') {
      if (!item.empty()) {
        try {
          allowed.push_back(parse_weight_format(item));
        } catch (const Error& e) {
          usage_fail("--allow-formats: ", e.what());
        }
      }
      item.clear();
    } else if (allowed_list[i] != ' ') {
      item += allowed_list[i];
    }
  }
  StageWeightFormats out;
  const bool any_auto = llm == "auto" || flow == "auto" || hift == "auto";
  cpu::StageFormatTimes times;
  std::string no_times;  // why there are none
  if (any_auto) {
    const std::string path = tuning_file.empty() ? cpu::default_kernel_tuning_path() : tuning_file;
    try {
      const cpu::KernelTuning t = cpu::read_kernel_tuning(path);
      if (!(t.machine == cpu::this_machine(compute_threads(threads)))) {
        no_times = cat(path, " was measured on another machine or thread count");
      } else if (const auto it = t.formats.find(cpu::tuning_model_key(model));
                 it != t.formats.end()) {
        times = it->second;
      } else {
        no_times = cat(path, " has no measurement of ", model);
      }
    } catch (const Error& e) {
      no_times = e.what();
    }
  }
  const auto resolve = [&](const char* stage, const std::string& value, WeightFormat& format) {
    if (value != "auto") {
      format = parse_weight_format(value);
      return;
    }
    const cpu::FormatPick pick = cpu::pick_stage_format(times, stage, allowed);
    format = pick.format;
    out.lines.push_back(no_times.empty() ? cat(stage, ": auto -> ", pick.why)
                                         : cat(stage, ": auto -> fp32 (", no_times,
                                               "; `cosyserve tune` measures it)"));
  };
  resolve("llm", llm, out.llm);
  resolve("flow", flow, out.flow);
  resolve("hift", hift, out.hift);
  for (const std::string& line : out.lines) std::fprintf(stderr, "%s\n", line.c_str());
  return out;
}

void add_tuning_option(CLI::App& app, std::string& file) {
  app.add_option("--tuning", file,
                 "Kernel tuning file (`cosyserve tune` writes it; default: $COSY_TUNING_FILE, "
                 "else ~/.cache/cosyserve/tuning.json)");
}

std::string apply_kernel_tuning(const std::string& file, int threads, bool always_say) {
  if (const auto forced = cpu::forced_gemm_kernel()) {
    const std::string message =
        cat("kernels: every shape on ", cpu::gemm_kernel_name(*forced), " (COSY_GEMM_KERNEL)");
    std::fprintf(stderr, "%s\n", message.c_str());
    return message;
  }
  const cpu::TuningStatus status = cpu::install_kernel_tuning(file, compute_threads(threads));
  // The default file being absent is the usual case and says nothing unless asked; an
  // absent named file, a stale or corrupt one, or an installed one is always said.
  const bool quiet_default =
      !status.installed && file.empty() && status.message.find("warning") == std::string::npos;
  if (always_say || !quiet_default) std::fprintf(stderr, "%s\n", status.message.c_str());
  return status.message;
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
