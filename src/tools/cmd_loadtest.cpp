// cosyserve loadtest: many streams at once, measured as their listeners hear them. Drives
// the in-process engine (--model) or a running server (--url) in a closed loop at each
// --concurrency, or an open loop of Poisson arrivals (--rate); prints a table, and writes
// the sweep as JSON (what `plan` reads) and as an SVG chart.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/machine_limits.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "runtime/trace.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
#include "tools/loadtest/corpus.h"
#include "tools/loadtest/engine_target.h"
#include "tools/loadtest/load_driver.h"
#include "tools/loadtest/server_target.h"
#include "tools/loadtest/svg_chart.h"
#include "tools/progress_line.h"

namespace cosy::tools {
namespace {

using loadtest::LevelReport;
using Json = nlohmann::json;

struct LoadtestOptions {
  std::string model, url, voice, api_key, corpus, json, chart, trace;
  std::string weights = "fp32", flow_weights = "fp32", hift_weights = "fp32";
  std::vector<int64_t> concurrency = {1, 2, 4, 8};
  double rate = 0;
  int64_t requests = 0;
  int64_t rounds = 0;  // or this many requests per stream
  double duration_s = 0;
  int64_t warmup_requests = -1;
  double text_rate = 0;
  double tokens_per_text_token = 0;
  double tokens_sd = -1;
  double buffer_ms = 0;
  uint64_t seed = 1;
  int64_t first_hop = 25;
  int threads = 0;
  std::string tuning, allow_formats;
  int64_t max_streams = 0;
  double request_timeout_s = 600;
  std::vector<std::string> schedules;  // in-process: each level under each policy
  double ttfa_target = EngineOptions{}.ttfa_target_s;
};

void check(const LoadtestOptions& o) {
  if (o.model.empty() == o.url.empty()) usage_fail("give --model DIR or --url URL (one of them)");
  for (const int64_t c : o.concurrency) {
    if (c < 1 || c > 4096) usage_fail("--concurrency values must be in [1, 4096], got ", c);
  }
  if (o.rate < 0) usage_fail("--rate must be > 0");
  if (o.requests < 0) usage_fail("--requests must be >= 1");
  if (o.rounds < 0) usage_fail("--rounds must be >= 1");
  if (o.rounds > 0 && (o.requests > 0 || o.rate > 0))
    usage_fail("--rounds sets the closed loop's request count: not with --requests or --rate");
  if (o.duration_s < 0) usage_fail("--duration must be > 0");
  if (o.text_rate < 0) usage_fail("--text-rate must be > 0");
  if (o.tokens_per_text_token < 0 || o.tokens_per_text_token > 100)
    usage_fail("--tokens-per-text-token must be in [0, 100]");
  if (o.buffer_ms < 0) usage_fail("--buffer-ms must be >= 0");
  if (o.first_hop < 1) usage_fail("--first-hop must be >= 1");
  if (!o.schedules.empty() && o.model.empty())
    usage_fail("--schedule sets the in-process engine's policy (the server has its own flag)");
}

std::string stage_batches(const std::optional<EngineStats>& s) {
  if (!s) return "-";
  auto mean = [](const StageStats& st) {
    return st.calls > 0 ? static_cast<double>(st.items) / static_cast<double>(st.calls) : 0.0;
  };
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f/%.1f/%.1f", mean(s->llm), mean(s->flow), mean(s->hift));
  return buf;
}

void print_header() {
  std::printf("%9s %6s %6s %5s %7s %8s %8s %8s %8s %8s %9s %8s %14s\n", "schedule", "conc", "rate",
              "reqs", "failed", "xRT", "TTFA p50", "p90", "p99", "no-stall", "stall p99", "audio s",
              "batch l/f/h");
}

void print_level(const LevelReport& r) {
  std::printf("%9s %6lld %6.2f %5lld %7lld %8.3f %8.3f %8.3f %8.3f %7.1f%% %9.3f %8.2f %14s\n",
              r.schedule.empty() ? "-" : r.schedule.c_str(), static_cast<long long>(r.concurrency),
              r.rate, static_cast<long long>(r.requests), static_cast<long long>(r.failed), r.xrt,
              r.first_audio_s.p50, r.first_audio_s.p90, r.first_audio_s.p99, 100 * r.no_stall_share,
              r.stall_s.p99, r.mean_audio_s, stage_batches(r.stages).c_str());
  for (const std::string& e : r.errors) std::printf("       error: %s\n", e.c_str());
  std::fflush(stdout);
}

// One series per schedule (or one, when the load test did not set it).
std::string chart_of(const std::vector<LevelReport>& levels, const std::string& title) {
  const bool open = !levels.empty() && levels.front().mode == "open";
  const std::string x_label = open ? "arrivals per second" : "concurrent streams";
  loadtest::ChartPanel first{"Time to first audio", x_label, "seconds", {}, !open};
  loadtest::ChartPanel speed{"Throughput", x_label, "audio seconds per second (xRT)", {}, !open};
  loadtest::ChartPanel clean{"Playback without a stall", x_label, "% of streams", {}, !open};
  std::vector<std::string> schedules;
  for (const LevelReport& r : levels) {
    if (std::find(schedules.begin(), schedules.end(), r.schedule) == schedules.end())
      schedules.push_back(r.schedule);
  }
  for (const std::string& s : schedules) {
    const std::string tag = s.empty() ? "" : " (" + s + ")";
    loadtest::ChartSeries p50{"p50" + tag}, p99{"p99" + tag, {}, true}, xrt{"xRT" + tag},
        share{"no stall" + tag};
    for (const LevelReport& r : levels) {
      if (r.schedule != s) continue;
      const double x = open ? r.rate : static_cast<double>(r.concurrency);
      p50.points.emplace_back(x, r.first_audio_s.p50);
      p99.points.emplace_back(x, r.first_audio_s.p99);
      xrt.points.emplace_back(x, r.xrt);
      share.points.emplace_back(x, 100 * r.no_stall_share);
    }
    first.series.push_back(std::move(p50));
    first.series.push_back(std::move(p99));
    speed.series.push_back(std::move(xrt));
    clean.series.push_back(std::move(share));
  }
  return loadtest::svg_chart(title, {first, speed, clean});
}

int run_loadtest(const LoadtestOptions& o) {
  check(o);
  const loadtest::Corpus corpus =
      o.corpus.empty() ? loadtest::builtin_corpus() : loadtest::load_corpus(o.corpus);
  loadtest::WorkloadOptions w;
  w.seed = o.seed;
  w.length.tokens_per_text_token = o.tokens_per_text_token;
  w.length.sd = o.tokens_sd >= 0 ? o.tokens_sd : 0.15 * o.tokens_per_text_token;
  w.text_rate = o.text_rate;
  w.buffer_s = o.buffer_ms / 1000.0;

  int64_t max_c = 1;
  for (const int64_t c : o.concurrency) max_c = std::max(max_c, c);
  std::unique_ptr<Backend> backend;
  std::optional<ModelFolder> folder;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<loadtest::LoadTarget> target;
  Json machine;
  double peak_gflops = 0;
  // The formats in use (an "auto" stage's pick).
  std::array<std::string, 3> weights = {o.weights, o.flow_weights, o.hift_weights};
  if (!o.model.empty()) {
    folder.emplace(load_model_folder(o.model));
    backend = cpu::create_cpu_backend(o.threads);
    apply_kernel_tuning(o.tuning, o.threads);
    ThreadPool probe(o.threads > 0 ? o.threads : ThreadPool::global().num_threads());
    const auto limits = bench::measure_machine(probe);
    peak_gflops = limits.peak_gflops;
    machine = {{"peak_gflops", limits.peak_gflops},
               {"dram_read_gbps", limits.dram_read_gbps},
               {"threads", probe.num_threads()}};
    EngineOptions eo;
    const StageWeightFormats formats = resolve_weight_formats(
        o.model, o.weights, o.flow_weights, o.hift_weights, o.allow_formats, o.tuning, o.threads);
    eo.llm_weights = formats.llm;
    eo.flow_weights = formats.flow;
    eo.hift_weights = formats.hift;
    weights = {weight_format_name(formats.llm), weight_format_name(formats.flow),
               weight_format_name(formats.hift)};
    eo.ttfa_target_s = o.ttfa_target;
    if (!o.schedules.empty()) eo.schedule = parse_schedule_policy(o.schedules.front());
    eo.max_streams =
        o.max_streams > 0 ? o.max_streams : std::max<int64_t>(max_c, EngineOptions{}.max_streams);
    engine = std::make_unique<Engine>(*backend, *folder, eo);
    const auto ids = engine->voice_ids();
    if (ids.empty()) fail(o.model, ": no zero-shot voice in spk2info.pt");
    const std::string voice = o.voice.empty() ? ids.front() : o.voice;
    target = std::make_unique<loadtest::EngineTarget>(*engine, engine->voice(voice), voice,
                                                      loadtest::EngineTargetOptions{o.first_hop});
  } else {
    loadtest::ServerTargetOptions so;
    so.url = o.url;
    so.voice = o.voice;
    so.api_key = o.api_key;
    so.request_timeout_s = o.request_timeout_s;
    target = std::make_unique<loadtest::ServerTarget>(so);
  }

  ProgressLine progress;
  loadtest::LoadDriver driver(*target, corpus.texts, w,
                              [&](const std::string& line) { progress.update(line); });
  // The trace: the engine's tracks in process, and each request as its client saw it.
  std::shared_ptr<TraceWriter> trace;
  if (!o.trace.empty()) {
    if (engine) {
      trace = start_trace(*engine, o.trace);
    } else {
      trace = std::make_shared<TraceWriter>(o.trace);
    }
    driver.on_record([&trace](const loadtest::StreamRecord& r, loadtest::Clock::time_point sent) {
      namespace tt = trace_tracks;
      const auto at = [sent](double s) { return sent + loadtest::seconds(s); };
      double audio = 0;
      for (const auto& a : r.arrivals) audio += a.audio_s;
      trace->name_track(tt::kClients, r.id, "clients", "request " + std::to_string(r.id));
      nlohmann::json args = {{"ok", r.ok}, {"audio_s", audio}};
      if (!r.ok) args["error"] = r.error;
      trace->span(tt::kClients, r.id, "request", sent, at(r.ended_s), args);
      for (const auto& a : r.arrivals) {
        if (a.audio_s > 0) {
          trace->instant(tt::kClients, r.id, "first audio", at(a.at_s));
          break;
        }
      }
    });
  }
  InterruptHandler on_interrupt([&] { driver.stop(); });

  std::printf("cosyserve loadtest: %s\n", target->describe().c_str());
  std::printf("texts: %s corpus, %zu sentences; %s; lengths: %s; listener buffer %.0f ms\n",
              corpus.source.c_str(), corpus.texts.size(),
              o.text_rate > 0 ? cat("text fed at ", o.text_rate, " pieces/s (bistream)").c_str()
                              : "whole texts",
              w.length.describe().c_str(), o.buffer_ms);
  if (engine) {
    std::printf("weights: llm %s, flow %s, hift %s; machine peak %.1f GFLOP/s (fp32 FMA)\n",
                weights[0].c_str(), weights[1].c_str(), weights[2].c_str(), peak_gflops);
  }
  print_header();

  std::vector<LevelReport> levels;
  std::vector<loadtest::LevelPlan> plans;
  if (o.rate > 0) {
    loadtest::LevelPlan p;
    p.rate = o.rate;
    plans.push_back(p);
  } else {
    for (const int64_t c : o.concurrency) {
      loadtest::LevelPlan p;
      p.concurrency = c;
      plans.push_back(p);
    }
  }
  // Each level under each schedule in turn: the same requests, seeds and lengths.
  const std::vector<std::string> schedules =
      o.schedules.empty() ? std::vector<std::string>{""} : o.schedules;
  for (loadtest::LevelPlan& p : plans) {
    const int64_t scale =
        p.rate > 0 ? std::max<int64_t>(1, std::llround(p.rate * 5)) : p.concurrency;
    p.warmup_requests = o.warmup_requests >= 0 ? o.warmup_requests : scale;
    p.duration_s = o.duration_s;
    p.requests = o.requests > 0     ? o.requests
                 : o.rounds > 0     ? o.rounds * scale
                 : o.duration_s > 0 ? 0
                                    : std::max<int64_t>(8, 2 * scale);
    for (const std::string& schedule : schedules) {
      if (!schedule.empty()) engine->set_schedule(parse_schedule_policy(schedule));
      LevelReport r = driver.run(p);
      r.schedule = schedule.empty() && engine ? schedule_policy_name(engine->schedule()) : schedule;
      progress.clear();
      if (driver.stopped()) break;
      print_level(r);
      levels.push_back(std::move(r));
    }
    if (driver.stopped()) {
      std::fprintf(stderr, "interrupted: the level in progress is not reported\n");
      break;
    }
  }

  Json sweep = {{"tool", "cosyserve loadtest"},
                {"target", target->describe()},
                {"model", o.model},
                {"url", o.url},
                {"weights", {{"llm", weights[0]}, {"flow", weights[1]}, {"hift", weights[2]}}},
                {"corpus", corpus.source},
                {"texts", corpus.texts.size()},
                {"text_feed", o.text_rate > 0 ? cat(o.text_rate, " pieces/s") : "whole"},
                {"length_model", w.length.describe()},
                {"tokens_per_text_token", w.length.tokens_per_text_token},
                {"buffer_ms", o.buffer_ms},
                {"seed", o.seed},
                {"first_hop", o.first_hop},
                {"levels", Json::array()}};
  if (!machine.is_null()) sweep["machine"] = machine;
  for (const LevelReport& r : levels) {
    Json j = loadtest::to_json(r, true);
    if (r.stages && r.audio_in_window_s > 0 && peak_gflops > 0) {
      // Useful work per audio second, and the share of the machine's peak it used.
      const double flops = r.stages->llm.flops + r.stages->flow.flops + r.stages->hift.flops;
      j["gflop_per_audio_s"] = flops / r.audio_in_window_s / 1e9;
      j["peak_fraction"] = flops / r.window_s / 1e9 / peak_gflops;
    }
    sweep["levels"].push_back(std::move(j));
  }
  if (trace) {
    trace->close();
    std::fprintf(stderr, "wrote trace %s\n", o.trace.c_str());
  }
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << sweep.dump(2) << "\n";
    if (!out) fail(o.json, ": cannot write");
    std::fprintf(stderr, "wrote %s\n", o.json.c_str());
  }
  if (!o.chart.empty()) {
    std::ofstream out(o.chart);
    out << chart_of(levels, "cosyserve loadtest: " + target->describe());
    if (!out) fail(o.chart, ": cannot write");
    std::fprintf(stderr, "wrote %s\n", o.chart.c_str());
  }
  if (driver.stopped()) return 128 + interrupt_signal();
  return 0;
}

}  // namespace

Command register_loadtest(CLI::App& app) {
  auto o = std::make_shared<LoadtestOptions>();
  app.add_option("--model", o->model, "Model folder: drive the engine in this process");
  app.add_option("--url", o->url, "A running server (http://host:port) to drive instead");
  app.add_option("--voice", o->voice, "Voice id (in-process default: the folder's first)");
  app.add_option("--api-key", o->api_key, "--url: the server's API key")
      ->envname("COSYSERVE_API_KEY");
  app.add_option("--concurrency", o->concurrency,
                 "Closed loop: concurrent streams, one level each (e.g. 1,2,4,8,16)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--rate", o->rate, "Open loop instead: Poisson arrivals per second");
  app.add_option("--requests", o->requests,
                 "Measured requests per level (default: 2 x concurrency, at least 8)");
  app.add_option("--rounds", o->rounds,
                 "Or: measured requests per stream (requests = rounds x concurrency)");
  app.add_option("--duration", o->duration_s, "Or: seconds of measurement per level");
  app.add_option("--warmup-requests", o->warmup_requests,
                 "Requests per level before measuring (default: the concurrency; open loop: 5 s "
                 "of arrivals)");
  app.add_option("--corpus", o->corpus,
                 "UTF-8 file, one sentence per line (default: the built-in English and Chinese "
                 "corpus)");
  app.add_option("--text-rate", o->text_rate,
                 "Feed each text piece by piece at this many tokens per second through the "
                 "bistream path, as a chat LLM writes it (0: whole)")
      ->capture_default_str();
  app.add_option("--tokens-per-text-token", o->tokens_per_text_token,
                 "Force each request's length to this many speech tokens per text token, drawn "
                 "per request (about 7.5 is natural speech; 0: the model decides, and random "
                 "weights run to their limit)")
      ->capture_default_str();
  app.add_option("--tokens-sd", o->tokens_sd,
                 "Standard deviation of that draw (default: 15 % of the mean)");
  app.add_option("--buffer-ms", o->buffer_ms,
                 "The listener's jitter buffer: playback starts once it holds this much audio")
      ->capture_default_str();
  app.add_option("--seed", o->seed, "Seeds the texts, lengths and sampling")->capture_default_str();
  app.add_option("--json", o->json, "Write the sweep as JSON (cosyserve plan --sweep reads it)");
  app.add_option("--chart", o->chart, "Write a chart of the sweep (.svg)");
  app.add_option("--trace", o->trace,
                 "Write a Chrome trace-event JSON: the engine's stages and streams (in process) "
                 "and each request as its client saw it");
  app.add_option("--weights", o->weights, "In-process: LLM weight format")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--flow-weights", o->flow_weights, "In-process: flow weight format")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--hift-weights", o->hift_weights, "In-process: HiFT weight format")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  add_allow_formats_option(app, o->allow_formats);
  app.add_option("--first-hop", o->first_hop, "In-process: the first streaming chunk, in tokens")
      ->capture_default_str();
  app.add_option("--threads", o->threads, "In-process: compute threads (0: all cores)")
      ->capture_default_str();
  add_tuning_option(app, o->tuning);
  app.add_option("--max-streams", o->max_streams,
                 "In-process: the engine's open-stream limit (default: enough for the load)");
  app.add_option("--schedule", o->schedules,
                 "In-process: the engine's scheduling policy, or several (lockstep,deadline) to "
                 "run each level under each on the same requests")
      ->delimiter(',')
      ->check(CLI::IsMember({"deadline", "lockstep"}));
  app.add_option("--ttfa-target", o->ttfa_target,
                 "In-process, deadline schedule: a new stream's time-to-first-audio target (s)")
      ->capture_default_str();
  app.add_option("--request-timeout", o->request_timeout_s, "--url: seconds per request, at most")
      ->capture_default_str();
  return [o] {
    if (!o->chart.empty() &&
        (o->chart.size() < 4 || o->chart.compare(o->chart.size() - 4, 4, ".svg") != 0)) {
      usage_fail("--chart ", o->chart, ": only SVG charts are written (name it .svg)");
    }
    return run_loadtest(*o);
  };
}

}  // namespace cosy::tools
