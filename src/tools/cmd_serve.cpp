// cosyserve serve: the OpenAI-compatible HTTP server on one engine (src/server). One
// process, one model loaded once, many concurrent streams batched by the engine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "server/voice_service.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
#include "tools/yaml_config.h"

namespace cosy::tools {
namespace {

struct ServeOptions {
  std::string config;
  CLI::App* app = nullptr;
  std::string model;
  server::ServerOptions server;
  std::string weights = "fp32", flow_weights = "fp32", hift_weights = "fp32";
  int compute_threads = 0;
  std::string tuning, allow_formats;
  std::string schedule = schedule_policy_name(EngineOptions{}.schedule);
  double ttfa_target = EngineOptions{}.ttfa_target_s;
  std::string trace;
};

// COSYSERVE_API_KEY: one key, or several separated by commas.
void add_environment_keys(std::vector<std::string>& keys) {
  const char* env = std::getenv("COSYSERVE_API_KEY");
  if (env == nullptr) return;
  std::stringstream s(env);
  for (std::string k; std::getline(s, k, ',');) {
    if (!k.empty()) keys.push_back(k);
  }
}

int run_serve(ServeOptions& options) {
  if (!options.config.empty()) apply_yaml_config(*options.app, options.config);
  ServeOptions o = options;
  if (o.model.empty())
    usage_fail("--model is required (as a flag, or the key 'model' in --config)");
  add_environment_keys(o.server.api_keys);
  try {
    o.server.validate();
  } catch (const Error& e) {
    usage_fail(e.what());
  }
  const ModelFolder folder = load_model_folder(o.model);
  if (o.server.model_name.empty())
    o.server.model_name =
        folder.config.family == ModelFamily::CosyVoice3 ? "cosyvoice3" : "cosyvoice2";
  auto backend = cpu::create_cpu_backend(o.compute_threads);
  apply_kernel_tuning(o.tuning, o.compute_threads, /*always_say=*/true);
  EngineOptions eo;
  const StageWeightFormats formats =
      resolve_weight_formats(o.model, o.weights, o.flow_weights, o.hift_weights, o.allow_formats,
                             o.tuning, o.compute_threads);
  eo.llm_weights = formats.llm;
  eo.flow_weights = formats.flow;
  eo.hift_weights = formats.hift;
  o.weights = weight_format_name(formats.llm);
  o.flow_weights = weight_format_name(formats.flow);
  o.hift_weights = weight_format_name(formats.hift);
  eo.max_streams = o.server.max_streams;
  eo.max_input_chars = o.server.max_input_chars;
  eo.schedule = parse_schedule_policy(o.schedule);
  eo.ttfa_target_s = o.ttfa_target;
  Engine engine(*backend, folder, eo);
  if (engine.frontend() == nullptr) {
    fail(o.model, "/CosyVoice-BlankEN has no tokenizer files: the server speaks text");
  }
  const auto trace = o.trace.empty() ? nullptr : start_trace(engine, o.trace);
  auto voices = std::make_shared<server::VoiceService>(
      engine, folder,
      o.server.voice_store.empty() ? std::filesystem::path(o.model) / "spk2info.pt"
                                   : std::filesystem::path(o.server.voice_store),
      o.server.max_voice_jobs);
  if (!voices->unavailable().empty()) {
    std::fprintf(stderr, "note: voices from recordings are off: %s\n",
                 voices->unavailable().c_str());
  }
  server::HttpServer http(engine, o.server, voices);
  const int port = http.listen();
  std::fprintf(stderr,
               "cosyserve serve: model %s\n%sweights: %s, flow-weights: %s, hift-weights: %s, "
               "schedule: %s, ttfa-target: %g s\n",
               o.model.c_str(), o.server.to_string().c_str(), o.weights.c_str(),
               o.flow_weights.c_str(), o.hift_weights.c_str(), o.schedule.c_str(), o.ttfa_target);
  if (http.agent_port() >= 0) {
    std::fprintf(stderr, "agent-check on %s:%d\n", o.server.host.c_str(), http.agent_port());
  }
  std::fprintf(stderr, "listening on http://%s:%d\n", o.server.host.c_str(), port);
  std::fflush(stderr);
  InterruptHandler on_signal([&http] { http.drain(); });
  http.run();
  if (trace) trace->close();  // after the drain: every stream's end is in it
  return 0;
}

}  // namespace

Command register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  server::ServerOptions& s = o->server;
  const std::string formats = join(weight_choice_names());
  o->app = &app;
  app.add_option("--config", o->config, "YAML file whose keys are these flags' names (flags win)")
      ->check(CLI::ExistingFile);
  app.add_option("--model", o->model,
                 "Model folder (official CosyVoice2 or CosyVoice3 layout); required, as a flag or "
                 "in --config");
  app.add_option("--host", s.host, "Address to listen on (0.0.0.0 exposes it)")
      ->capture_default_str();
  app.add_option("--port", s.port, "Port (0: any free one, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--agent-port", s.agent_port,
                 "HAProxy agent-check port: answers each connection with the free capacity "
                 "(\"ready up 75%\", \"drain\"); -1: none, 0: any free one (printed at start)")
      ->check(CLI::Range(-1, 65535))
      ->capture_default_str();
  app.add_option("--model-name", s.model_name,
                 "The model id clients name (default: cosyvoice2 or cosyvoice3, the folder's "
                 "family)");
  app.add_option("--threads", s.threads, "Network threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--compute-threads", o->compute_threads, "Compute threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_tuning_option(app, o->tuning);
  app.add_option("--max-streams", s.max_streams, "Speech streams synthesising at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-queue", s.max_queue, "Requests that may wait for a stream; beyond: 429")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--queue-timeout", s.queue_timeout, "Seconds a request may wait; then 429")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-input-chars", s.max_input_chars, "Longer input: 413")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-body-bytes", s.max_body_bytes, "Larger request body: 413")
      ->check(CLI::Range(int64_t{64}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-header-bytes", s.max_header_bytes, "Larger request header: 431")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--request-timeout", s.request_timeout, "Seconds to receive a whole request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--client-buffer-seconds", s.client_buffer_seconds,
                 "Audio a client may leave unread before it is cut off")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", s.drain_timeout,
                 "Seconds streams in flight get to finish after SIGTERM/SIGINT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-ws-message-bytes", s.max_ws_message_bytes,
                 "Larger WebSocket message: closed with 1009")
      ->check(CLI::Range(int64_t{256}, int64_t{1} << 26))
      ->capture_default_str();
  app.add_option("--ws-idle-timeout", s.ws_idle_timeout, "Seconds a WebSocket may stay silent")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--api-key", s.api_keys,
                 "Accepted API key (repeat for several; also $COSYSERVE_API_KEY, comma-separated)");
  app.add_option("--voice-store", s.voice_store,
                 "Where voices registered through POST /v1/audio/voices are kept (spk2info.pt "
                 "format; default: "
                 "the model folder's spk2info.pt)");
  app.add_option("--max-voice-jobs", s.max_voice_jobs,
                 "Recordings that may wait to become voices (ref_audio, POST /v1/audio/voices); "
                 "beyond: 429")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--trim-memory-seconds", s.trim_memory_seconds,
                 "Hand freed heap memory back to the system this often (0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--access-log", s.access_log,
                 "One line per request on stderr: json | logfmt | off")
      ->check(CLI::IsMember({"json", "logfmt", "off"}))
      ->capture_default_str();
  add_guard_options(app, s.guard);
  app.add_option("--weights", o->weights, "LLM weight format: " + formats)
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--flow-weights", o->flow_weights, "Flow weight format: " + formats)
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--hift-weights", o->hift_weights, "Vocoder weight format: " + formats)
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  add_allow_formats_option(app, o->allow_formats);
  app.add_option("--schedule", o->schedule,
                 "How the engine picks each step's work: deadline (listeners closest to a stall "
                 "first, then new streams' first audio) | lockstep (every stage over everything "
                 "ready)")
      ->check(CLI::IsMember({"deadline", "lockstep"}))
      ->capture_default_str();
  app.add_option("--trace", o->trace,
                 "Write a Chrome trace-event JSON of the engine until the server exits");
  app.add_option("--ttfa-target", o->ttfa_target,
                 "deadline schedule: a new stream's time-to-first-audio target, seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  return [o] { return run_serve(*o); };
}

}  // namespace cosy::tools
