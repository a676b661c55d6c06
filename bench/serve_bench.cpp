// What the server adds: the same speech requests, with the same seeds, through the
// in-process engine and through `cosyserve serve`'s HTTP path (POST /v1/audio/speech,
// streamed pcm) on the same engine, at each concurrency level. Reports the median time to
// first audio and RTF of both, and the server's overhead.
// Usage: serve_bench MODEL_DIR [--weights int8] [--concurrency 1,8] [--rounds 2] [--text T]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "server/http_server.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Sample {
  double ttfa = 0;   // seconds to the first audio
  double total = 0;  // seconds to the end
  double audio = 0;  // seconds of audio
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char buf[64];
  std::snprintf(buf, sizeof buf, "[%.2f .. %.2f]", v.front(), v.back());
  return buf;
}

Sample in_process(cosy::Engine& engine, const std::string& text, uint64_t seed) {
  cosy::StreamOptions so;
  so.voice = engine.voice(engine.voice_ids().at(0));
  so.input = cosy::StreamInput::Text;
  so.streaming = true;
  so.sampling.seed = seed;
  so.vocoder_seed = seed;
  const auto t0 = Clock::now();
  std::mutex m;
  double first = -1;
  auto stream = engine.open(so, [&](const cosy::AudioChunk& c) {
    std::lock_guard lock(m);
    if (first < 0 && !c.samples.empty())
      first = std::chrono::duration<double>(Clock::now() - t0).count();
    return true;
  });
  stream->push_text(text);
  stream->finish_input();
  const cosy::StreamResult r = stream->wait();
  Sample s;
  s.total = std::chrono::duration<double>(Clock::now() - t0).count();
  s.ttfa = first;
  s.audio = static_cast<double>(r.samples) / engine.sample_rate();
  return s;
}

Sample over_http(int port, const std::string& voice, const std::string& text, uint64_t seed) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  const auto t0 = Clock::now();
  stream.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::string_body> req{http::verb::post, "/v1/audio/speech", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = nlohmann::json{
      {"model", "cosyvoice2"},
      {"input", text},
      {"voice", voice},
      {"response_format", "pcm"},
      {"seed",
       seed}}.dump();
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(stream, buf, parser);
  Sample s;
  s.ttfa = -1;
  int64_t bytes = 0;
  char chunk[1 << 16];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    beast::error_code ec;
    http::read_some(stream, buf, parser, ec);  // returns with whatever arrived
    if (ec && ec != http::error::need_buffer) break;
    const auto got = static_cast<int64_t>(sizeof(chunk) - parser.get().body().size);
    if (got > 0 && s.ttfa < 0) s.ttfa = std::chrono::duration<double>(Clock::now() - t0).count();
    bytes += got;
  }
  s.total = std::chrono::duration<double>(Clock::now() - t0).count();
  s.audio = static_cast<double>(bytes) / 2.0 / 24000.0;
  return s;
}

template <typename Fn>
std::vector<Sample> concurrently(int n, Fn fn) {
  std::vector<Sample> out(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { out[static_cast<size_t>(i)] = fn(i); });
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("server overhead against the in-process engine");
  std::string model, weights = "int8",
                     text = "Hello there, this is a short test of the speech server.";
  std::vector<int> levels{1, 8};
  int rounds = 2;
  app.add_option("model", model, "Model folder")->required();
  app.add_option("--weights", weights, "LLM weight format");
  app.add_option("--concurrency", levels, "Concurrency levels")->delimiter(',');
  app.add_option("--rounds", rounds, "Rounds (in-process and server alternate)");
  app.add_option("--text", text, "The request text");
  CLI11_PARSE(app, argc, argv);

  const cosy::ModelFolder folder = cosy::load_model_folder(model);
  auto backend = cosy::cpu::create_cpu_backend(0);
  cosy::EngineOptions eo;
  eo.llm_weights = cosy::parse_weight_format(weights);
  eo.max_streams = 64;
  cosy::Engine engine(*backend, folder, eo);
  const std::string voice = engine.voice_ids().at(0);
  cosy::server::ServerOptions so;
  so.port = 0;
  so.access_log = "off";
  so.max_streams = 64;
  cosy::server::HttpServer server(engine, so);
  const int port = server.listen();
  std::thread net_thread([&] { server.run(); });

  std::printf("model %s, LLM %s, text \"%s\", voice %s\n", model.c_str(), weights.c_str(),
              text.c_str(), voice.c_str());
  // Warm-up: caches, prompt states, page faults.
  (void)in_process(engine, text, 1);
  (void)over_http(port, voice, text, 1);
  for (int c : levels) {
    std::vector<double> ttfa_e, ttfa_s, rtf_e, rtf_s;
    for (int r = 0; r < rounds; ++r) {
      for (const Sample& s :
           concurrently(c, [&](int i) { return in_process(engine, text, 100 + i); })) {
        ttfa_e.push_back(s.ttfa);
        rtf_e.push_back(s.total / s.audio);
      }
      for (const Sample& s :
           concurrently(c, [&](int i) { return over_http(port, voice, text, 100 + i); })) {
        ttfa_s.push_back(s.ttfa);
        rtf_s.push_back(s.total / s.audio);
      }
    }
    const double te = median(ttfa_e), ts = median(ttfa_s), re = median(rtf_e), rs = median(rtf_s);
    std::printf(
        "concurrency %d (%d requests each): first audio in-process %.3f s, server %.3f s (%+.1f "
        "ms, %+.1f %%); "
        "RTF in-process %.3f, server %.3f (%+.1f %%)\n",
        c, c * rounds, te, ts, (ts - te) * 1e3, 100 * (ts - te) / te, re, rs, 100 * (rs - re) / re);
    std::printf("  first audio, min..max: in-process %s s, server %s s\n", spread(ttfa_e).c_str(),
                spread(ttfa_s).c_str());
    std::fflush(stdout);
  }
  server.drain();
  net_thread.join();
  return 0;
}
