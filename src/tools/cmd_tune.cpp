// cosyserve tune: measures, on this machine, which GEMM kernel is fastest for each of a
// model's weight shapes (per format and regime), and writes the choices where every
// command that loads a model reads them.
//
//   cosyserve tune --model DIR [--out FILE] [--threads N]
//   cosyserve tune --list-kernels
//
// The shapes are the model's real ones: a short offline and a short streaming synthesis run
// first with a recorder on the GEMM, so every linear and convolution of the three stages
// (at the row counts and input geometry they ran with) is timed. Entries of the same
// machine for shapes not seen now (another model's) are kept. Then each stage is timed in
// every weight format this CPU runs, on the chosen kernels: `--weights auto` (and
// `--flow-weights auto`, `--hift-weights auto`) pick from these figures.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/cpu_identity.h"
#include "kernels/gemm_tuner.h"
#include "kernels/kernel_tuning.h"
#include "kernels/packed_weight.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct TuneOptions {
  std::string model, out;
  int threads = 0;
  int64_t tokens = 60;
  double seconds_per_kernel = 0.05;
  bool list_kernels = false;
  bool formats = true;
};

// One utterance of `tokens` speech tokens from the engine's first voice (24 plain text ids:
// the runs need no tokenizer); fails unless it completes.
StreamResult speak(Engine& engine, bool streaming, int64_t tokens, const std::string& what) {
  const auto ids = engine.voice_ids();
  if (ids.empty()) fail("no zero-shot voice in spk2info.pt to run");
  StreamOptions so;
  so.voice = engine.voice(ids[0]);
  so.streaming = streaming;
  so.fixed_tokens = tokens;
  so.sampling.seed = 1;
  auto stream = engine.open(so);
  std::vector<int32_t> text(24);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>(100 + 37 * i);
  stream->push_text_ids(text);
  stream->finish_input();
  StreamResult r = stream->wait();
  if (r.status != StreamStatus::Done) fail(what, " run: ", r.error);
  return r;
}

// Each stage's real-time factor with every weight in `format`: one offline utterance.
std::map<std::string, double> stage_rtf(const ModelFolder& folder, Backend& backend,
                                        WeightFormat format, int64_t tokens) {
  EngineOptions eo;
  eo.max_streams = 1;
  eo.llm_weights = eo.flow_weights = eo.hift_weights = format;
  Engine engine(backend, folder, eo);
  const StreamResult r = speak(engine, false, tokens, weight_format_name(format));
  const double audio_s =
      static_cast<double>(r.samples) / static_cast<double>(folder.config.sample_rate);
  const EngineStats st = engine.stats();
  return {{"llm", st.llm.seconds / audio_s},
          {"flow", st.flow.seconds / audio_s},
          {"hift", st.hift.seconds / audio_s}};
}

// Runs one offline and one streaming utterance so the recorder sees every shape.
void run_model_once(const ModelFolder& folder, Backend& backend, int64_t tokens) {
  EngineOptions eo;
  eo.max_streams = 1;
  eo.prompt_state_voices = 0;  // the streaming run then computes the prompt's own chunks too
  Engine engine(backend, folder, eo);
  speak(engine, false, tokens, "offline");
  speak(engine, true, tokens, "streaming");
}

int run_tune(const TuneOptions& o) {
  if (o.list_kernels) {
    for (const cpu::GemmKernel k : cpu::gemm_kernels_on_this_cpu()) {
      std::printf("%s\n", std::string(cpu::gemm_kernel_name(k)).c_str());
    }
    return 0;
  }
  if (o.model.empty()) usage_fail("tune: --model is required");
  if (o.tokens < 30) fail("--tokens must be >= 30 (a streaming chunk and its look-ahead)");
  if (o.seconds_per_kernel <= 0) fail("--seconds-per-kernel must be > 0");
  const std::string out = o.out.empty() ? cpu::default_kernel_tuning_path() : o.out;
  const int threads = compute_threads(o.threads);
  const ModelFolder folder = load_model_folder(o.model);
  auto backend = cpu::create_cpu_backend(o.threads);
  std::printf("cosyserve tune: %s, %d threads\ncpu: %s\n", o.model.c_str(), threads,
              cpu::cpu_summary().c_str());

  // The shapes, recorded on the default kernels (a stale choice must not be what runs).
  cpu::install_gemm_kernel_choices(nullptr);
  std::map<cpu::GemmShape, cpu::RecordedGemm> shapes;
  {
    cpu::GemmShapeRecorder recorder;
    run_model_once(folder, *backend, o.tokens);
    // The fp16 and int8 decode shapes (their choice is the few-rows kernel's).
    if (o.formats) {
      for (const WeightFormat f : {WeightFormat::F16, WeightFormat::I8}) {
        stage_rtf(folder, *backend, f, o.tokens);
      }
    }
    shapes = recorder.shapes();
  }
  std::printf("%zu GEMM shapes with a kernel to choose (this CPU runs: %s)\n\n", shapes.size(),
              cpu::gemm_kernel_list().c_str());

  ThreadPool own(threads);
  ThreadPool& pool = o.threads > 0 ? own : ThreadPool::global();
  cpu::GemmTuneOptions to;
  to.seconds_per_kernel = o.seconds_per_kernel;
  cpu::KernelTuning tuning;
  tuning.machine = cpu::this_machine(threads);
  double default_total = 0, chosen_total = 0;
  for (const auto& [shape, rec] : shapes) {
    const cpu::TunedGemm t = cpu::tune_gemm(pool, shape, rec, to);
    // A decode shape's seconds are the sum over the batch sizes it was timed at.
    std::string counts;
    for (const int64_t m : cpu::timed_row_counts(rec.rows, to.max_rows)) {
      counts += cat(counts.empty() ? "" : "+", m);
    }
    std::string line = cat(weight_format_name(shape.format), " N=", shape.n, " K=", shape.taps, "x",
                           shape.tap_width, " M=", counts, ":");
    for (const auto& [kernel, s] : t.seconds) {
      char ms[32];
      std::snprintf(ms, sizeof ms, " %.3f ms", s * 1e3);
      line += cat(" ", cpu::gemm_kernel_name(kernel), ms);
    }
    const double base = t.seconds.at(cpu::GemmKernel::Avx2);
    const double chosen = t.seconds.at(t.kernel);
    default_total += base;
    chosen_total += chosen;
    std::printf("%s -> %s (%.2fx)\n", line.c_str(),
                std::string(cpu::gemm_kernel_name(t.kernel)).c_str(), base / chosen);
    tuning.gemm.push_back(t);
  }
  // Each stage in each weight format, on the kernels just chosen: what --weights auto reads.
  if (o.formats) {
    cpu::install_gemm_kernel_choices(cpu::kernel_choices_of(tuning));
    std::printf("\nreal-time factor per stage and weight format (%lld tokens offline):\n",
                static_cast<long long>(o.tokens));
    std::vector<WeightFormat> formats = {WeightFormat::F32, WeightFormat::F16, WeightFormat::I8};
    if (cpu::cpu_has_bf16()) formats.push_back(WeightFormat::BF16);
    if (cpu::cpu_has_vnni()) formats.push_back(WeightFormat::W8A8);
    for (const WeightFormat f : formats) {
      const auto rtf = stage_rtf(folder, *backend, f, o.tokens);
      std::printf("  %-5s llm %.3f  flow %.3f  hift %.3f\n", weight_format_name(f), rtf.at("llm"),
                  rtf.at("flow"), rtf.at("hift"));
      for (const auto& [stage, v] : rtf)
        tuning.formats[cpu::tuning_model_key(folder.dir.string())][stage][f] = v;
    }
  }
  // Keep what an earlier run measured on this machine for shapes not seen here.
  try {
    const cpu::KernelTuning old = cpu::read_kernel_tuning(out);
    if (old.machine == tuning.machine) {
      size_t kept = 0;
      for (const cpu::TunedGemm& e : old.gemm) {
        if (shapes.count(e.shape) == 0) {
          tuning.gemm.push_back(e);
          ++kept;
        }
      }
      if (kept > 0) std::printf("kept %zu shapes of other models from %s\n", kept, out.c_str());
      for (const auto& [model, stages] : old.formats) tuning.formats.emplace(model, stages);
    }
  } catch (const Error&) {
    // No earlier file, or one that cannot be read: replaced.
  }
  cpu::write_kernel_tuning(out, tuning);
  if (chosen_total > 0) {
    std::printf("\nall shapes once: default %.2f ms, tuned %.2f ms (%.2fx)\n", default_total * 1e3,
                chosen_total * 1e3, default_total / chosen_total);
  }
  std::printf("written %s (%s)\n", out.c_str(), tuning.machine.describe().c_str());
  return 0;
}

}  // namespace

Command register_tune(CLI::App& app) {
  auto o = std::make_shared<TuneOptions>();
  app.add_option("--model", o->model, "Model folder in the official layout (required)");
  app.add_option("--out", o->out,
                 "Tuning file to write (default: $COSY_TUNING_FILE, else "
                 "~/.cache/cosyserve/tuning.json, which every command reads)");
  app.add_option("--threads", o->threads,
                 "Compute threads (0: all cores); the file holds for this count only")
      ->capture_default_str();
  app.add_option("--tokens", o->tokens, "Speech tokens of the runs that record the shapes")
      ->capture_default_str();
  app.add_option("--seconds-per-kernel", o->seconds_per_kernel,
                 "Timing budget of each kernel on each shape")
      ->capture_default_str();
  app.add_flag("!--no-formats", o->formats,
               "Skip timing each stage in each weight format (what --weights auto picks from)");
  app.add_flag("--list-kernels", o->list_kernels,
               "Print the GEMM kernels this CPU runs (COSY_GEMM_KERNEL takes any), and exit");
  return [o] { return run_tune(*o); };
}

}  // namespace cosy::tools
