// cosyserve bench: a fixed synthesis workload on a model folder (make-model's full-size
// folder for the figures in docs/performance.md), through the same Engine API as synth.
// The LM is forced to a set number of tokens so random weights give a fixed length.
// Runs: offline (stream=False), then streaming with each first hop. Per stage: time, RTF,
// GFLOP/s and the fraction of this machine's peak FMA rate, measured in the same run.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/cpu_identity.h"
#include "kernels/machine_limits.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct BenchOptions {
  std::string model, voice, json, trace, weights = "fp32", flow_weights = "fp32";
  std::vector<int64_t> first_hops = {15, 25};
  int64_t tokens = 250;  // 10 s of audio
  int threads = 0;
  std::string tuning, allow_formats, hift_weights = "fp32";
  int64_t memory_cache_mb = 1024;
  int64_t first_chunk_repeats = 4;
  int64_t uncond_first_passes = EngineOptions{}.uncond_first_passes;
  int64_t lm_voice_prefixes = EngineOptions{}.lm_voice_prefixes;
  bool half_state = false;
  std::optional<int64_t> flow_left_chunks;
  QualityGuardOptions guard;
  BeamSearchOptions beams;
};

// About 40 text tokens: a typical sentence for one segment.
constexpr const char* kText =
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the green "
    "forest where nobody can find it again until the next morning.";

struct Run {
  std::string name;
  int64_t first_hop = 0;
  StreamResult result;
  EngineStats stats;        // this run's share
  EngineStats first_chunk;  // the share spent until the first audio chunk
  double audio_s = 0;
  // Streaming: the first-chunk latency of this run and of the repeats after it (streams
  // that stop at their first chunk), in run order.
  std::vector<double> first_chunks;
  int64_t uncond_first_pass_hits = 0;  // of those streams' first chunks
};

struct Spread {
  double min = 0, median = 0, max = 0;
};
Spread spread_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {v.front(), median, v.back()};
}

StageStats minus(const StageStats& a, const StageStats& b) {
  return {a.seconds - b.seconds, a.flops - b.flops, a.calls - b.calls, a.items - b.items};
}

// The process's peak resident memory (VmHWM), in MB.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Forgets the peak so far (the machine probe's large buffers are not the engine's).
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

// A run's stages in report order, with their achieved GFLOP/s.
struct StageFigure {
  const char* name;
  const StageStats* stats;
  double gflops;
};
std::array<StageFigure, 3> stage_figures(const Run& r) {
  std::array<StageFigure, 3> out = {StageFigure{"llm", &r.stats.llm, 0},
                                    StageFigure{"flow", &r.stats.flow, 0},
                                    StageFigure{"hift", &r.stats.hift, 0}};
  for (auto& f : out) {
    f.gflops = f.stats->seconds > 0 ? f.stats->flops / f.stats->seconds / 1e9 : 0;
  }
  return out;
}

nlohmann::json run_json(const Run& r, double peak_gflops) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageFigure& f : stage_figures(r)) {
    stages.push_back({{"stage", f.name},
                      {"seconds", f.stats->seconds},
                      {"rtf", f.stats->seconds / r.audio_s},
                      {"gflops", f.gflops},
                      {"peak_frac", f.gflops / peak_gflops}});
  }
  nlohmann::json j = {{"run", r.name},
                      {"stages", stages},
                      {"rtf_total", r.result.total_s / r.audio_s},
                      {"audio_s", r.audio_s},
                      {"seconds", r.result.total_s},
                      {"quality", r.result.quality.to_json()}};
  if (r.first_hop > 0) {
    j["first_hop"] = r.first_hop;
    j["first_chunk_s"] = r.result.first_chunk_s;
    j["first_chunk_stages"] = {{"llm", r.first_chunk.llm.seconds},
                               {"flow", r.first_chunk.flow.seconds},
                               {"hift", r.first_chunk.hift.seconds}};
    const Spread sp = spread_of(r.first_chunks);
    j["first_chunk_runs_s"] = r.first_chunks;
    j["uncond_first_pass_hits"] = r.uncond_first_pass_hits;
    j["lm_prefix_rows"] = r.stats.lm_prefix_rows;
    j["first_chunk_median_s"] = sp.median;
  }
  return j;
}

void print_run(const Run& r, double peak_gflops) {
  std::printf("\n%s: %.2f s of audio in %.2f s, RTF %.3f", r.name.c_str(), r.audio_s,
              r.result.total_s, r.result.total_s / r.audio_s);
  if (r.first_hop > 0) {
    std::printf(", first chunk %.3f s (llm %.3f s in %lld steps%s, flow %.3f s%s%s, hift %.3f s)",
                r.result.first_chunk_s, r.first_chunk.llm.seconds,
                static_cast<long long>(r.first_chunk.llm.calls),
                r.stats.lm_prefix_rows > 0 ? " from the voice's cached LM prefix" : "",
                r.first_chunk.flow.seconds,
                r.stats.prompt_state_starts > 0 ? " from the voice's prompt state" : "",
                r.stats.uncond_first_pass_hits > 0 ? " and the cached CFG first pass" : "",
                r.first_chunk.hift.seconds);
  }
  if (r.first_chunks.size() > 1) {
    const Spread sp = spread_of(r.first_chunks);
    std::printf("\n  first chunk over %zu streams: median %.3f s, min %.3f s, max %.3f s",
                r.first_chunks.size(), sp.median, sp.min, sp.max);
  }
  std::printf("\n  %-5s %9s %8s %9s %7s %7s\n", "stage", "seconds", "RTF", "GFLOP/s", "peak",
              "calls");
  for (const StageFigure& f : stage_figures(r)) {
    std::printf("  %-5s %9.3f %8.3f %9.1f %6.1f%% %7lld\n", f.name, f.stats->seconds,
                f.stats->seconds / r.audio_s, f.gflops, 100 * f.gflops / peak_gflops,
                static_cast<long long>(f.stats->calls));
  }
}

int run_bench(const BenchOptions& o) {
  if (o.tokens < 1) fail("--tokens must be >= 1");
  for (const int64_t hop : o.first_hops) {
    if (hop < 1) fail("--first-hop must be >= 1");
  }
  if (o.memory_cache_mb < 0) fail("--memory-cache-mb must be >= 0");
  if (o.first_chunk_repeats < 0) fail("--first-chunk-repeats must be >= 0");
  if (o.uncond_first_passes < 0) fail("--uncond-first-passes must be >= 0");
  if (o.lm_voice_prefixes < 0) fail("--lm-voice-prefixes must be >= 0");
  const ModelFolder folder = load_model_folder(o.model);
  cpu::BlockCache::Options cache;
  cache.max_cached_bytes = static_cast<size_t>(o.memory_cache_mb) << 20;
  auto backend = cpu::create_cpu_backend(o.threads, cache);
  const std::string kernels = apply_kernel_tuning(o.tuning, o.threads, /*always_say=*/true);
  ThreadPool probe_pool(o.threads > 0 ? o.threads : ThreadPool::global().num_threads());
  const auto limits = bench::measure_machine(probe_pool);
  reset_peak_rss();
  EngineOptions eo;
  const StageWeightFormats formats = resolve_weight_formats(
      o.model, o.weights, o.flow_weights, o.hift_weights, o.allow_formats, o.tuning, o.threads);
  eo.llm_weights = formats.llm;
  eo.flow_weights = formats.flow;
  eo.hift_weights = formats.hift;
  eo.max_streams = 1;
  eo.flow_left_chunks = o.flow_left_chunks;
  eo.uncond_first_passes = o.uncond_first_passes;
  eo.lm_voice_prefixes = o.lm_voice_prefixes;
  Engine engine(*backend, folder, eo);
  const auto trace = o.trace.empty() ? nullptr : start_trace(engine, o.trace);
  const auto ids = engine.voice_ids();
  if (ids.empty() && o.voice.empty()) fail(o.model, ": no zero-shot voice in spk2info.pt");
  const auto voice = engine.voice(o.voice.empty() ? ids[0] : o.voice);
  std::printf(
      "cosyserve bench: %s, LLM weights %s, flow weights %s, hift weights %s, %lld tokens per "
      "run, %d threads\n",
      o.model.c_str(), weight_format_name(formats.llm), weight_format_name(formats.flow),
      weight_format_name(formats.hift), static_cast<long long>(o.tokens), probe_pool.num_threads());
  // What `auto` picked per stage and why (a reduced format not faster here is named).
  for (const std::string& line : formats.lines) std::printf("weights %s\n", line.c_str());
  std::printf("cpu: %s\n", cpu::cpu_summary().c_str());
  std::printf("machine: peak %.1f GFLOP/s FMA (%d-bit), DRAM read %.1f GB/s; voice prompt %.2f s\n",
              limits.peak_gflops, limits.fma_bits, limits.dram_read_gbps,
              static_cast<double>(voice->speech.size()) / 25.0);

  auto push_sentence = [&](SynthesisStream& stream) {
    if (engine.frontend() != nullptr) {
      stream.push_text(kText);
    } else {  // no tokenizer files: the same length of plain ids
      std::vector<int32_t> text(40);
      for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>(100 + 37 * i);
      stream.push_text_ids(text);
    }
    stream.finish_input();
  };
  std::vector<Run> runs;
  auto run_one = [&](const std::string& name, bool streaming, int64_t hop) {
    StreamOptions so;
    so.voice = voice;
    so.streaming = streaming;
    so.flow.first_hop = hop > 0 ? hop : 25;
    so.flow.half_state = streaming && o.half_state;
    so.fixed_tokens = o.tokens;
    so.sampling.seed = 1;
    so.guard = o.guard;
    so.beams = o.beams;
    const EngineStats before = engine.stats();
    // The stages' time until the first chunk (the callback runs on the scheduler thread,
    // between stages).
    EngineStats at_first_chunk;
    bool first_seen = false;
    auto stream = engine.open(so, [&](const AudioChunk& c) {
      if (!first_seen && !c.samples.empty()) {
        first_seen = true;
        at_first_chunk = engine.stats();
      }
      return true;
    });
    push_sentence(*stream);
    Run r;
    r.name = name;
    r.first_hop = hop;
    r.result = stream->wait();
    if (r.result.status != StreamStatus::Done) fail(name, ": ", r.result.error);
    const EngineStats after = engine.stats();
    r.stats.llm = minus(after.llm, before.llm);
    r.stats.flow = minus(after.flow, before.flow);
    r.stats.hift = minus(after.hift, before.hift);
    r.stats.prompt_state_starts = after.prompt_state_starts - before.prompt_state_starts;
    r.stats.uncond_first_pass_hits = after.uncond_first_pass_hits - before.uncond_first_pass_hits;
    r.stats.lm_prefix_rows = after.lm_prefix_rows - before.lm_prefix_rows;
    if (first_seen) {
      r.first_chunk.llm = minus(at_first_chunk.llm, before.llm);
      r.first_chunk.flow = minus(at_first_chunk.flow, before.flow);
      r.first_chunk.hift = minus(at_first_chunk.hift, before.hift);
    }
    r.audio_s = static_cast<double>(r.result.samples) / folder.config.sample_rate;
    if (streaming) {
      // This host's timings vary from run to run: more streams of the same request, each
      // cancelled (through its callback) at its first chunk, give the latency's spread.
      r.first_chunks.push_back(r.result.first_chunk_s);
      for (int64_t i = 0; i < o.first_chunk_repeats; ++i) {
        auto again = engine.open(so, [](const AudioChunk& c) { return c.samples.empty(); });
        push_sentence(*again);
        const StreamResult rr = again->wait();
        if (rr.status == StreamStatus::Failed) fail(name, ", first-chunk repeat: ", rr.error);
        if (rr.first_chunk_s < 0) fail(name, ", first-chunk repeat: ended without audio");
        r.first_chunks.push_back(rr.first_chunk_s);
      }
      r.uncond_first_pass_hits =
          engine.stats().uncond_first_pass_hits - before.uncond_first_pass_hits;
    }
    print_run(r, limits.peak_gflops);
    runs.push_back(std::move(r));
  };
  run_one("offline", false, 0);
  if (!o.first_hops.empty()) {
    // A voice's first streaming request computes its prompt flow state (kept by the engine
    // for later requests); a short stream does it here, so the runs below show the
    // latency of a voice in use. Its own time is the cold-start cost. Its first chunk has
    // the first run's shape, as an earlier request's would: the memory it frees is what
    // the backend's block cache hands to the next stream.
    StreamOptions warm;
    warm.voice = voice;
    warm.flow.first_hop = o.first_hops.front();
    warm.fixed_tokens = o.first_hops.front() + 5;  // the hop, its 3 look-ahead tokens, a tail
    warm.flow.half_state = o.half_state;
    auto s = engine.open(warm);
    std::vector<int32_t> text(8, 100);
    s->push_text_ids(text);
    s->finish_input();
    const StreamResult r = s->wait();
    if (r.status != StreamStatus::Done) fail("warm-up: ", r.error);
    // What the warm-up left for the voice's later streams (CosyVoice3 keeps no CFG first
    // pass).
    const EngineStats st = engine.stats();
    std::string kept = cat("the prompt flow state, ", std::lround(st.prompt_state_bytes / 1e6),
                           " MB shared by the voice's streams");
    if (st.uncond_first_pass_bytes > 0)
      kept += cat(", and its first chunk's CFG first pass, ",
                  std::lround(st.uncond_first_pass_bytes / 1e6), " MB");
    std::printf("\nvoice warm-up stream (computes %s): %.2f s\n", kept.c_str(), r.total_s);
  }
  for (const int64_t hop : o.first_hops)
    run_one("streaming, first hop " + std::to_string(hop), true, hop);
  if (trace) {
    trace->close();
    std::fprintf(stderr, "wrote trace %s\n", o.trace.c_str());
  }
  const double rss = peak_rss_mb();
  const double state_mb = static_cast<double>(engine.stats().flow_state_peak_bytes) / 1e6;
  std::printf("\npeak RSS %.0f MB; streaming flow state peak %.0f MB (%s)\n", rss, state_mb,
              o.half_state ? "half precision" : "fp32");

  if (!o.json.empty()) {
    // Top level: the offline run's stages and RTF, the first streaming run's latency.
    nlohmann::json j = run_json(runs[0], limits.peak_gflops);
    j.erase("run");
    j["first_hop"] = runs.size() > 1 ? runs[1].first_hop : 0;
    j["first_chunk_s"] =
        runs.size() > 1 ? runs[1].result.first_chunk_s : runs[0].result.first_chunk_s;
    if (runs.size() > 1) j["first_chunk_median_s"] = spread_of(runs[1].first_chunks).median;
    j["peak_rss_mb"] = rss;
    j["flow_state_peak_mb"] = state_mb;
    j["half_state"] = o.half_state;
    j["weights"] = weight_format_name(formats.llm);
    j["flow_weights"] = weight_format_name(formats.flow);
    j["hift_weights"] = weight_format_name(formats.hift);
    j["weights_auto"] = formats.lines;
    j["machine"] = {{"peak_gflops", limits.peak_gflops},
                    {"fma_bits", limits.fma_bits},
                    {"dram_read_gbps", limits.dram_read_gbps},
                    {"cpu", cpu::cpu_model_name()},
                    {"isa", cpu::cpu_isa_flags()},
                    {"kernels", kernels}};
    j["runs"] = nlohmann::json::array();
    for (const Run& r : runs) j["runs"].push_back(run_json(r, limits.peak_gflops));
    std::ofstream out(o.json);
    out << j.dump(2) << "\n";
    if (!out) fail(o.json, ": cannot write");
    std::fprintf(stderr, "wrote %s\n", o.json.c_str());
  }
  return 0;
}

}  // namespace

Command register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("--model", o->model,
                 "Model folder (make-model --preset cosyvoice2-0.5b or cosyvoice3-0.5b)")
      ->required();
  app.add_option("--voice", o->voice, "Voice id (default: the first)");
  app.add_option("--weights", o->weights,
                 "LLM weight format: " + join(weight_choice_names()) +
                     " (w8a8 also quantises the activations to int8: not the official "
                     "numerics; needs AVX512-VNNI)")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--flow-weights", o->flow_weights,
                 "Flow weight format: " + join(weight_choice_names()) +
                     " (bf16 rounds the activations, w8a8 quantises them to int8 with about 5x "
                     "bf16's mel difference: not the official numerics; need AVX512_BF16 / "
                     "AVX512-VNNI)")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--hift-weights", o->hift_weights,
                 "Vocoder weight format: " + join(weight_choice_names()))
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  add_allow_formats_option(app, o->allow_formats);
  app.add_option("--first-hop", o->first_hops, "Streaming first hop(s) in tokens")
      ->capture_default_str();
  app.add_option("--tokens", o->tokens, "Speech tokens per run (25 per second of audio)")
      ->capture_default_str();
  app.add_option("--json", o->json, "Write the figures as JSON");
  add_guard_options(app, o->guard);
  add_beam_options(app, o->beams);
  app.add_option("--trace", o->trace, "Write a Chrome trace-event JSON of the engine");
  app.add_flag("--half-state", o->half_state,
               "Streaming: keep the flow's cached attention rows in half precision");
  app.add_option("--flow-left-chunks", o->flow_left_chunks,
                 "Streaming: bound the flow's attention to N left chunks (bounds the state; "
                 "CHANGES THE OUTPUT from the official model's)");
  app.add_option("--threads", o->threads, "Compute threads (0: all cores)")->capture_default_str();
  add_tuning_option(app, o->tuning);
  app.add_option("--first-chunk-repeats", o->first_chunk_repeats,
                 "Streaming: more streams per run, each stopped at its first chunk, for the "
                 "first-chunk latency's median")
      ->capture_default_str();
  app.add_option("--uncond-first-passes", o->uncond_first_passes,
                 "Streaming: first chunks whose CFG first Euler pass is kept for later streams "
                 "(0: none)")
      ->capture_default_str();
  app.add_option("--lm-voice-prefixes", o->lm_voice_prefixes,
                 "Voices whose LM prefix (sos + prompt text) is kept for later streams (0: none)")
      ->capture_default_str();
  app.add_option("--memory-cache-mb", o->memory_cache_mb,
                 "Freed backend memory kept for reuse, at most (0: none)")
      ->capture_default_str();
  return [o] { return run_bench(*o); };
}

}  // namespace cosy::tools
