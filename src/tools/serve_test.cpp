// End-to-end: `cosyserve serve` on a loopback port with a model the test writes, talked to
// with curl (a real HTTP client), as a user's deployment would be.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>

#include "io/audio_file.h"
#include "tools/cli_test_util.h"
#include "tools/serve_test_util.h"

namespace {

namespace fs = std::filesystem;
using cosy::tools::testing::curl;
using cosy::tools::testing::CurlResult;
using cosy::tools::testing::json_post;
using cosy::tools::testing::run;
using cosy::tools::testing::ServerProcess;
using cosy::tools::testing::slurp;
using Json = nlohmann::json;

// A tiny model and its one voice.
struct Model {
  fs::path dir;
  std::string voice;
};
const Model& model() {
  static const Model m = [] {
    Model m;
    m.dir = cosy::testing::scratch_dir("serve-model-" + std::to_string(getpid()));
    const auto r = run("make-model --preset tiny --seed 4 --out " + m.dir.string());
    EXPECT_EQ(r.code, 0) << r.out;
    const auto j = Json::parse(run("inspect --json --model " + m.dir.string()).out);
    m.voice = j["voices"][0]["id"];
    return m;
  }();
  return m;
}

std::string speech_body(const std::string& format, const std::string& input = "Hello there.",
                        const std::string& extra = "") {
  return R"({"model":"cosyvoice2","voice":")" + model().voice + R"(","input":")" + input +
         R"(","response_format":")" + format + R"(","seed":11)" + extra + "}";
}

std::vector<int16_t> pcm_samples(const std::string& bytes) {
  std::vector<int16_t> v(bytes.size() / 2);
  std::memcpy(v.data(), bytes.data(), v.size() * 2);
  return v;
}

std::vector<int16_t> decoded_samples(const fs::path& dir, const std::string& name,
                                     const std::string& bytes) {
  const fs::path p = dir / name;
  std::ofstream(p, std::ios::binary) << bytes;
  const cosy::Audio a = cosy::read_audio(p);
  std::vector<int16_t> v(a.samples.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = int16_t(std::lrint(a.samples[i] * 32768.0f));
  return v;
}

// Correlation of two signals at the best lag up to `max_lag` (codec delay).
double best_correlation(const std::vector<int16_t>& a, const std::vector<int16_t>& b,
                        size_t max_lag) {
  double best = -1;
  for (size_t lag = 0; lag <= max_lag && lag < b.size(); lag += 1) {
    double ab = 0, aa = 0, bb = 0;
    const size_t n = std::min(a.size(), b.size() - lag);
    for (size_t i = 0; i < n; ++i) {
      ab += double(a[i]) * b[i + lag];
      aa += double(a[i]) * a[i];
      bb += double(b[i + lag]) * b[i + lag];
    }
    best = std::max(best, ab / std::sqrt(aa * bb + 1e-9));
  }
  return best;
}

std::string base64_decode(const std::string& s) {
  std::string out(s.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), int(s.size()));
  if (n < 0) return {};
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') pad = (s.size() > 1 && s[s.size() - 2] == '=') ? 2 : 1;
  out.resize(size_t(n) - pad);
  return out;
}

double metric(const std::string& text, const std::string& name) {
  const std::regex re("(^|\\n)" + name + " ([0-9.eE+-]+)");
  std::smatch m;
  return std::regex_search(text, m, re) ? std::stod(m[2]) : -1;
}

TEST(Serve, EveryFormatStreamsAndDecodesBackToThePcmSamples) {
  const auto dir = cosy::testing::scratch_dir("serve-formats");
  ServerProcess server(model().dir, "", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  const CurlResult pcm = curl(dir, json_post(dir, url, speech_body("pcm")));
  ASSERT_EQ(pcm.status, 200) << pcm.body << server.log();
  EXPECT_NE(pcm.headers.find("Transfer-Encoding: chunked"), std::string::npos) << pcm.headers;
  EXPECT_NE(pcm.headers.find("Content-Type: audio/pcm"), std::string::npos) << pcm.headers;
  const auto reference = pcm_samples(pcm.body);
  ASSERT_GT(reference.size(), 24000u);
  for (const std::string format : {"wav", "flac"}) {
    const CurlResult r = curl(dir, json_post(dir, url, speech_body(format)));
    ASSERT_EQ(r.status, 200) << format;
    EXPECT_TRUE(decoded_samples(dir, "a." + format, r.body) == reference) << format;
  }
  for (const std::string format : {"opus", "mp3"}) {
    const CurlResult r = curl(dir, json_post(dir, url, speech_body(format)));
    ASSERT_EQ(r.status, 200) << format;
    const auto got = decoded_samples(dir, "a." + format, r.body);
    EXPECT_NEAR(double(got.size()), double(reference.size()), 4000) << format;
    EXPECT_GT(best_correlation(reference, got, 1500), 0.5) << format;
  }
}

TEST(Serve, ServerSentEventsCarryTheSameAudioThenUsage) {
  const auto dir = cosy::testing::scratch_dir("serve-sse");
  ServerProcess server(model().dir, "", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  const CurlResult pcm = curl(dir, json_post(dir, url, speech_body("pcm")));
  const CurlResult sse = curl(
      dir, "-N " + json_post(dir, url, speech_body("pcm", "Hello there.", R"(,"stream":true)")));
  ASSERT_EQ(sse.status, 200) << sse.body;
  EXPECT_NE(sse.headers.find("Content-Type: text/event-stream"), std::string::npos);
  std::string audio;
  int deltas = 0, dones = 0;
  std::istringstream lines(sse.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    ASSERT_EQ(line.rfind("data: ", 0), 0u) << line;
    const auto e = Json::parse(line.substr(6));
    if (e["type"] == "speech.audio.delta") {
      ++deltas;
      audio += base64_decode(e["audio"]);
    } else {
      ASSERT_EQ(e["type"], "speech.audio.done") << line;
      ++dones;
      EXPECT_EQ(e["usage"]["input_characters"], 12);
      EXPECT_NEAR(e["usage"]["output_audio_seconds"].get<double>(),
                  double(pcm.body.size()) / 2 / 24000, 1e-6);
    }
  }
  EXPECT_GT(deltas, 1);  // streamed in chunks
  EXPECT_EQ(dones, 1);
  EXPECT_TRUE(audio == pcm.body);
}

TEST(Serve, ConcurrentRequestsEachReturnWhatTheyReturnAlone) {
  const auto dir = cosy::testing::scratch_dir("serve-concurrent");
  ServerProcess server(model().dir, "--max-streams 8", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  std::vector<std::string> alone;
  std::string script = "set -e\n";
  for (int i = 0; i < 8; ++i) {
    const std::string body =
        R"({"model":"cosyvoice2","voice":")" + model().voice + R"(","input":"Sentence number )" +
        std::to_string(i) + R"(.","response_format":"pcm","seed":)" + std::to_string(100 + i) + "}";
    const CurlResult r = curl(dir, json_post(dir, url, body));
    ASSERT_EQ(r.status, 200);
    alone.push_back(r.body);
    std::ofstream(dir / ("c" + std::to_string(i) + ".json")) << body;
    script += "curl -s -f -o " + (dir / ("c" + std::to_string(i) + ".pcm")).string() +
              " -H 'Content-Type: application/json' --data-binary @" +
              (dir / ("c" + std::to_string(i) + ".json")).string() + " " + url + " &\n";
  }
  script += "wait\n";
  std::ofstream(dir / "together.sh") << script;
  ASSERT_EQ(std::system(("bash " + (dir / "together.sh").string()).c_str()), 0);
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(slurp(dir / ("c" + std::to_string(i) + ".pcm")) == alone[size_t(i)])
        << "request " << i;
  }
  // They did run together: the LM batched more than one stream per step.
  const std::string m = curl(dir, server.url("/metrics")).body;
  EXPECT_GT(metric(m, "cosyserve_stage_items_total\\{stage=\"llm\"\\}"),
            metric(m, "cosyserve_stage_calls_total\\{stage=\"llm\"\\}"));
}

TEST(Serve, AClientThatLeavesMidStreamFreesItsStream) {
  const auto dir = cosy::testing::scratch_dir("serve-disconnect");
  ServerProcess server(model().dir, "", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  const double idle_kv = metric(curl(dir, server.url("/metrics")).body, "cosyserve_kv_blocks_used");
  // A long text (random weights speak 20 tokens per text token); curl gives up after 1 s.
  std::string text;
  for (int i = 0; i < 30; ++i) text += "This is a long sentence to speak. ";
  const CurlResult cut = curl(dir, "--max-time 1 " + json_post(dir, url, speech_body("pcm", text)));
  EXPECT_EQ(cut.exit_code, 28);  // curl's time-out: it left mid-stream
  EXPECT_GT(cut.body.size(), 0u);
  std::string m;
  for (int i = 0; i < 100; ++i) {
    m = curl(dir, server.url("/metrics")).body;
    if (metric(m, "cosyserve_streams_running") == 0 &&
        metric(m, "cosyserve_kv_blocks_used") <= idle_kv + 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(metric(m, "cosyserve_streams_running"), 0) << m;
  // Back to the idle level, but for the voice's cached LM prefix (kept once computed).
  EXPECT_LE(metric(m, "cosyserve_kv_blocks_used"), idle_kv + 1) << m;
  EXPECT_NE(server.log().find("\"status\":499"), std::string::npos) << server.log();
}

TEST(Serve, DrainLetsStreamsFinishThenExitsZero) {
  const auto dir = cosy::testing::scratch_dir("serve-drain");
  ServerProcess server(model().dir, "--drain-timeout 30", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  std::string text;
  for (int i = 0; i < 6; ++i) text += "A sentence in flight. ";
  std::ofstream(dir / "long.json") << speech_body("pcm", text);
  const std::string in_flight =
      "curl -s -o " + (dir / "long.pcm").string() +
      " -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @" +
      (dir / "long.json").string() + " " + url + " > " + (dir / "long.code").string() + " &";
  ASSERT_EQ(std::system(in_flight.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(curl(dir, server.url("/ready")).status, 503);
  EXPECT_EQ(curl(dir, server.url("/health")).status, 200);
  const CurlResult refused = curl(dir, json_post(dir, url, speech_body("pcm")));
  EXPECT_EQ(refused.status, 503);  // a balancer retries it on another instance
  EXPECT_EQ(Json::parse(refused.body)["error"]["code"], "draining");
  EXPECT_EQ(server.wait_exit(60), 0) << server.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(slurp(dir / "long.code"), "200");
  EXPECT_GT(fs::file_size(dir / "long.pcm"), 48000u);
}

TEST(Serve, DrainTimeoutEndsStreamsWithAVisibleTruncation) {
  const auto dir = cosy::testing::scratch_dir("serve-drain-timeout");
  ServerProcess server(model().dir, "--drain-timeout 0.5", dir / "server.log");
  std::string text;
  for (int i = 0; i < 40; ++i) text += "A very long text that cannot finish in time. ";
  const std::string url = server.url("/v1/audio/speech");
  std::ofstream(dir / "long.json") << speech_body("pcm", text);
  std::ofstream(dir / "long-sse.json") << speech_body("pcm", text, R"(,"stream":true)");
  for (const std::string name : {"long", "long-sse"}) {
    const std::string cmd = "curl -s -N -o " + (dir / (name + ".out")).string() +
                            " -H 'Content-Type: application/json' --data-binary @" +
                            (dir / (name + ".json")).string() + " " + url + "; echo $? > " +
                            (dir / (name + ".rc")).string();
    ASSERT_EQ(std::system(("(" + cmd + ") &").c_str()), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(30), 0) << server.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(slurp(dir / "long.rc"), "18\n");  // curl: the chunked body ended short
  const std::string sse = slurp(dir / "long-sse.out");
  EXPECT_NE(sse.find("speech.audio.error"), std::string::npos) << sse.substr(0, 300);
  EXPECT_EQ(sse.find("speech.audio.done"), std::string::npos);
}

TEST(Serve, AFullServerAnswers429WithRetryAfter) {
  const auto dir = cosy::testing::scratch_dir("serve-busy");
  ServerProcess server(model().dir, "--max-streams 1 --max-queue 0", dir / "server.log");
  std::string text;
  for (int i = 0; i < 20; ++i) text += "Keep the only stream busy. ";
  std::ofstream(dir / "long.json") << speech_body("pcm", text);
  const std::string url = server.url("/v1/audio/speech");
  ASSERT_EQ(std::system(("curl -s -o /dev/null --max-time 20 -H 'Content-Type: application/json' "
                         "--data-binary @" +
                         (dir / "long.json").string() + " " + url + " &")
                            .c_str()),
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const CurlResult busy = curl(dir, json_post(dir, url, speech_body("pcm")));
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_NE(busy.headers.find("Retry-After: 1"), std::string::npos) << busy.headers;
  EXPECT_EQ(Json::parse(busy.body)["error"]["code"], "server_busy");
}

TEST(Serve, ApiKeysGuardEverythingButHealth) {
  const auto dir = cosy::testing::scratch_dir("serve-auth");
  ServerProcess server(model().dir, "--api-key k1", dir / "server.log", "COSYSERVE_API_KEY=k2,k3");
  const std::string url = server.url("/v1/audio/speech");
  EXPECT_EQ(curl(dir, json_post(dir, url, speech_body("pcm"))).status, 401);
  EXPECT_EQ(curl(dir, "-H 'Authorization: Bearer nope' " + json_post(dir, url, speech_body("pcm")))
                .status,
            401);
  for (const char* key : {"k1", "k2", "k3"}) {
    EXPECT_EQ(curl(dir, std::string("-H 'Authorization: Bearer ") + key + "' " +
                            json_post(dir, url, speech_body("pcm")))
                  .status,
              200)
        << key;
  }
  EXPECT_EQ(curl(dir, server.url("/v1/models")).status, 401);
  EXPECT_EQ(curl(dir, server.url("/metrics")).status, 401);
  for (const char* open : {"/health", "/ready", "/v2/health/live", "/v2/health/ready"}) {
    EXPECT_EQ(curl(dir, server.url(open)).status, 200) << open;
  }
}

TEST(Serve, ConfigFileSetsEveryFlagAndFlagsWin) {
  const auto dir = cosy::testing::scratch_dir("serve-config");
  std::ofstream(dir / "serve.yaml") << "max-streams: 3\nmax-queue: 5\nmodel-name: custom\n"
                                       "api-key:\n  - a\n  - b\n";
  ServerProcess server(model().dir, "--config " + (dir / "serve.yaml").string() + " --max-queue 7",
                       dir / "server.log");
  const std::string log = server.log();
  EXPECT_NE(log.find("max-streams: 3"), std::string::npos) << log;
  EXPECT_NE(log.find("max-queue: 7"), std::string::npos) << log;  // the flag wins
  EXPECT_NE(log.find("api-keys: 2"), std::string::npos) << log;
  const CurlResult models = curl(dir, "-H 'Authorization: Bearer b' " + server.url("/v1/models"));
  EXPECT_EQ(Json::parse(models.body)["data"][0]["id"], "custom");
  std::ofstream(dir / "bad.yaml") << "max-streams: 3\nno-such-flag: 1\n";
  // (bounded in time: a server that wrongly started would otherwise serve forever)
  const int rc = std::system(("timeout 20 " + std::string(COSY_CLI) + " serve --port 0 --model " +
                              model().dir.string() + " --config " + (dir / "bad.yaml").string() +
                              " > " + (dir / "bad.log").string() + " 2>&1")
                                 .c_str());
  const std::string bad = slurp(dir / "bad.log");
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << bad;
  EXPECT_NE(bad.find("unknown key 'no-such-flag'"), std::string::npos) << bad;
}

}  // namespace
