// End-to-end: `cosyserve serve` on a loopback port with a model the test writes, talked to
// with curl (a real HTTP client), as a user's deployment would be.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

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

// A file as base64, by coreutils' base64 (an encoder independent of the server's).
std::string base64_of_file(const fs::path& file) {
  const fs::path out = file.string() + ".b64";
  const int rc = std::system(("base64 -w0 " + file.string() + " > " + out.string()).c_str());
  EXPECT_EQ(rc, 0);
  return slurp(out);
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

// Polls /metrics until `name` reaches `value` (20 s at most): requests started in the
// background are in flight, whatever the machine's speed.
bool wait_for_metric(const fs::path& dir, const ServerProcess& server, const std::string& name,
                     double value, const std::string& auth = "") {
  for (int i = 0; i < 400; ++i) {
    if (metric(curl(dir, auth + server.url("/metrics")).body, name) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Waits (20 s at most) until a background client has written `path` and it is not empty.
std::string wait_for_file(const fs::path& path) {
  for (int i = 0; i < 400; ++i) {
    std::error_code ec;
    if (fs::file_size(path, ec) > 0 && !ec) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it finish writing
      return slurp(path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
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

// speed stretches the audio by its factor (the same tokens, fewer or more frames).
TEST(Serve, SpeedStretchesTheAudio) {
  const auto dir = cosy::testing::scratch_dir("serve-speed");
  ServerProcess server(model().dir, "", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  const CurlResult normal = curl(dir, json_post(dir, url, speech_body("pcm")));
  ASSERT_EQ(normal.status, 200) << normal.body;
  const CurlResult fast =
      curl(dir, json_post(dir, url, speech_body("pcm", "Hello there.", R"(,"speed":2.0)")));
  ASSERT_EQ(fast.status, 200) << fast.body;
  const CurlResult slow =
      curl(dir, json_post(dir, url, speech_body("pcm", "Hello there.", R"(,"speed":0.5)")));
  ASSERT_EQ(slow.status, 200) << slow.body;
  // Whole mel frames of 480 samples, 2 bytes each, int(frames / speed) of them.
  const double frames = double(normal.body.size()) / 960.0;
  EXPECT_EQ(fast.body.size() / 960, static_cast<size_t>(frames / 2.0)) << normal.body.size();
  EXPECT_EQ(slow.body.size() / 960, static_cast<size_t>(frames * 2.0)) << normal.body.size();
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
  // The client reads 20 000 bytes of audio, then leaves (head exits, curl gets SIGPIPE).
  const std::string leave = "curl -s -N --max-time 60 " +
                            json_post(dir, url, speech_body("pcm", text)) + " | head -c 20000 > " +
                            (dir / "cut.pcm").string();
  std::ofstream(dir / "leave.sh") << leave << "\n";
  std::system(("bash " + (dir / "leave.sh").string()).c_str());
  EXPECT_EQ(fs::file_size(dir / "cut.pcm"), 20000u);
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
  ServerProcess server(model().dir, "--drain-timeout 120", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  std::string text;
  for (int i = 0; i < 3; ++i) text += "A sentence in flight. ";
  std::ofstream(dir / "long.json") << speech_body("pcm", text);
  const std::string in_flight =
      "curl -s -o " + (dir / "long.pcm").string() +
      " -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @" +
      (dir / "long.json").string() + " " + url + " > " + (dir / "long.code").string() + " &";
  ASSERT_EQ(std::system(in_flight.c_str()), 0);
  // The same request from a client that reads slowly: its stream ends (and frees its slot)
  // long before its last bytes are read, and drain must not exit under it.
  const std::string slow = "(curl -s --limit-rate 150k -o " + (dir / "slow.pcm").string() +
                           " -H 'Content-Type: application/json' --data-binary @" +
                           (dir / "long.json").string() + " " + url + "; echo $? > " +
                           (dir / "slow.rc").string() + ") &";
  ASSERT_EQ(std::system(slow.c_str()), 0);
  ASSERT_TRUE(wait_for_metric(dir, server, "cosyserve_streams_running", 2));
  server.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(curl(dir, server.url("/ready")).status, 503);
  EXPECT_EQ(curl(dir, server.url("/health")).status, 200);
  const CurlResult refused = curl(dir, json_post(dir, url, speech_body("pcm")));
  EXPECT_EQ(refused.status, 503);  // a balancer retries it on another instance
  EXPECT_EQ(Json::parse(refused.body)["error"]["code"], "draining");
  EXPECT_EQ(server.wait_exit(150), 0) << server.log();
  EXPECT_EQ(wait_for_file(dir / "long.code"), "200");
  EXPECT_GT(fs::file_size(dir / "long.pcm"), 48000u);
  EXPECT_EQ(wait_for_file(dir / "slow.rc"), "0\n");  // curl: the whole chunked body came
  EXPECT_EQ(fs::file_size(dir / "slow.pcm"), fs::file_size(dir / "long.pcm"));
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
  // Both have audio under way (a stream that has sent none yet would get a plain 503).
  wait_for_file(dir / "long.out");
  wait_for_file(dir / "long-sse.out");
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(30), 0) << server.log();
  EXPECT_EQ(wait_for_file(dir / "long.rc"), "18\n");  // curl: the chunked body ended short
  wait_for_file(dir / "long-sse.rc");
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
  ASSERT_TRUE(wait_for_metric(dir, server, "cosyserve_streams_running", 1));
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

namespace {

// Sends raw bytes on a fresh connection and returns what comes back before the server
// closes it (or `wait_s` passes).
std::string raw_exchange(int port, const std::string& bytes, double wait_s) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "<connect failed>";
  }
  if (!bytes.empty()) (void)!write(fd, bytes.data(), bytes.size());
  timeval tv{};
  tv.tv_sec = long(wait_s);
  tv.tv_usec = long((wait_s - double(tv.tv_sec)) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fd);
  return out;
}

struct BadRequest {
  std::string what;
  std::string curl_args;  // after the URL's host part is filled in
  int status;
  std::string code;  // the OpenAI error code expected in the body ("" when no JSON body)
};

TEST(Serve, MalformedRequestsGetClearErrorsAndTheServerStaysUp) {
  const auto dir = cosy::testing::scratch_dir("serve-malformed");
  ServerProcess server(model().dir,
                       "--api-key secret --max-input-chars 100 --max-body-bytes 4096 "
                       "--max-header-bytes 2048 --request-timeout 1",
                       dir / "server.log");
  const std::string auth = "-H 'Authorization: Bearer secret' ";
  const std::string url = server.url("/v1/audio/speech");
  const std::string v = model().voice;
  auto post = [&](const std::string& body) { return auth + json_post(dir, url, body); };
  const std::string long_input(101, 'a');
  const std::vector<BadRequest> cases = {
      {"bad JSON", post("{\"model\":"), 400, "invalid_json"},
      {"not JSON at all", post("hello"), 400, "invalid_json"},
      {"a JSON array", post("[]"), 400, "invalid_value"},
      {"a JSON string", post("\"speak\""), 400, "invalid_value"},
      {"no model", post(R"({"input":"hi","voice":")" + v + "\"}"), 400, "invalid_value"},
      {"unknown model", post(R"({"model":"tts-1","input":"hi","voice":")" + v + "\"}"), 404,
       "model_not_found"},
      {"model a number", post(R"({"model":1,"input":"hi","voice":")" + v + "\"}"), 400,
       "invalid_value"},
      {"no input", post(R"({"model":"cosyvoice2","voice":")" + v + "\"}"), 400, "invalid_value"},
      {"empty input", post(R"({"model":"cosyvoice2","input":"","voice":")" + v + "\"}"), 400,
       "invalid_value"},
      {"blank input", post(R"({"model":"cosyvoice2","input":"  \n ","voice":")" + v + "\"}"), 400,
       "invalid_value"},
      {"input an object", post(R"({"model":"cosyvoice2","input":{},"voice":")" + v + "\"}"), 400,
       "invalid_value"},
      {"input over the limit",
       post(R"({"model":"cosyvoice2","input":")" + long_input + R"(","voice":")" + v + "\"}"), 413,
       "input_too_long"},
      {"input with nothing to speak",
       post(R"({"model":"cosyvoice2","input":"!!! ???","voice":")" + v + "\"}"), 400,
       "invalid_value"},
      {"no voice", post(R"({"model":"cosyvoice2","input":"hi"})"), 400, "invalid_value"},
      {"unknown voice", post(R"({"model":"cosyvoice2","input":"hi","voice":"nobody"})"), 400,
       "invalid_value"},
      {"voice a number", post(R"({"model":"cosyvoice2","input":"hi","voice":3})"), 400,
       "invalid_value"},
      {"voice object without id",
       post(R"({"model":"cosyvoice2","input":"hi","voice":{"name":"x"}})"), 400, "invalid_value"},
      {"aac",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v +
            R"(","response_format":"aac"})"),
       400, "invalid_value"},
      {"unknown format",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v +
            R"(","response_format":"wma"})"),
       400, "invalid_value"},
      {"speed too fast",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","speed":4})"), 400,
       "invalid_value"},
      {"speed a string",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","speed":"1"})"), 400,
       "invalid_value"},
      {"instructions not a string",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","instructions":["x"]})"),
       400, "invalid_value"},
      {"ref_audio naming a server file",
       post(R"({"model":"cosyvoice2","input":"hi","ref_audio":"/etc/passwd","ref_text":"x"})"), 400,
       "invalid_value"},
      {"ref_audio not base64",
       post(
           R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,%%%%","ref_text":"x"})"),
       400, "invalid_value"},
      {"ref_audio not audio",
       post(
           R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,aGVsbG8gd29ybGQh","ref_text":"x"})"),
       400, "invalid_value"},
      {"unknown stream_format",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","stream_format":"ws"})"),
       400, "invalid_value"},
      {"stream a string",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","stream":"true"})"), 400,
       "invalid_value"},
      {"negative seed",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","seed":-5})"), 400,
       "invalid_value"},
      {"zero temperature",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","temperature":0})"), 400,
       "invalid_value"},
      {"top_p above 1",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","top_p":2})"), 400,
       "invalid_value"},
      {"top_k a float",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","top_k":2.5})"), 400,
       "invalid_value"},
      {"unknown sampling",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","sampling":"beam"})"), 400,
       "invalid_value"},
      {"unknown field",
       post(R"({"model":"cosyvoice2","input":"hi","voice":")" + v + R"(","volume":11})"), 400,
       "invalid_value"},
      {"body over the limit",
       post("{\"model\":\"cosyvoice2\",\"input\":\"" + std::string(5000, 'a') + "\"}"), 413,
       "body_too_large"},
      {"no API key", json_post(dir, url, "{}"), 401, "invalid_api_key"},
      {"wrong API key", "-H 'Authorization: Bearer guess' " + json_post(dir, url, "{}"), 401,
       "invalid_api_key"},
      {"not a bearer key", "-H 'Authorization: Basic c2VjcmV0' " + json_post(dir, url, "{}"), 401,
       "invalid_api_key"},
      {"GET on speech", auth + url, 405, "method_not_allowed"},
      {"POST on models", auth + "-X POST " + server.url("/v1/models"), 405, "method_not_allowed"},
      {"POST on health", "-X POST " + server.url("/health"), 405, "method_not_allowed"},
      {"unknown path", auth + server.url("/v1/audio/transcriptions"), 404, "not_found"},
      {"path traversal", auth + "--path-as-is " + server.url("/../../etc/passwd"), 404,
       "not_found"},
      {"header over the limit",
       auth + "-H 'X-Big: " + std::string(3000, 'x') + "' " + server.url("/v1/models"), 431,
       "header_too_large"},
  };
  ASSERT_GE(cases.size(), 40u);
  for (const BadRequest& c : cases) {
    const CurlResult r = curl(dir, c.curl_args);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    if (!c.code.empty()) {
      const auto j = Json::parse(r.body, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << c.what << ": " << r.body;
      EXPECT_EQ(j["error"]["code"], c.code) << c.what << ": " << r.body;
      EXPECT_TRUE(j["error"].contains("message") && j["error"].contains("type") &&
                  j["error"].contains("param"))
          << c.what;
    }
  }
  // Below HTTP: garbage, a request cut short, and a client that sends nothing.
  EXPECT_NE(raw_exchange(server.port(), "GARBAGE\r\n\r\n", 3).find("400"), std::string::npos);
  EXPECT_EQ(raw_exchange(server.port(),
                         "POST /v1/audio/speech HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", 3),
            "");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(raw_exchange(server.port(), "", 5), "");  // closed after --request-timeout
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(4000));
  // Still up, and still speaking.
  EXPECT_EQ(curl(dir, server.url("/health")).status, 200);
  EXPECT_EQ(curl(dir, post(speech_body("pcm"))).status, 200);
  // Every refusal was counted by endpoint and status.
  const std::string m = curl(dir, auth + server.url("/metrics")).body;
  EXPECT_NE(m.find("cosyserve_requests_total{endpoint=\"speech\",status=\"400\"}"),
            std::string::npos)
      << m;
}

}  // namespace

namespace {

std::string node_client(const std::string& script) {
  return "node " + (fs::path(COSY_SOURCE_DIR) / "tests" / "clients" / script).string();
}

// The official OpenAI Node SDK, unchanged, streams the same audio curl gets.
TEST(Serve, TheOpenAiNodeSdkStreamsSpeech) {
  const auto dir = cosy::testing::scratch_dir("serve-openai-sdk");
  ServerProcess server(model().dir, "--api-key sk-test", dir / "server.log");
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const CurlResult reference =
      curl(dir, "-H 'Authorization: Bearer sk-test' " +
                    json_post(dir, server.url("/v1/audio/speech"),
                              speech_body("pcm", "Hello from the OpenAI SDK.")));
  ASSERT_EQ(reference.status, 200);
  for (const std::string format : {"pcm", "mp3"}) {
    const fs::path out = dir / ("sdk." + format);
    const std::string cmd = node_client("openai_speech.mjs") + " " + base + " sk-test " +
                            model().voice + " " + format + " " + out.string() + " > " +
                            (dir / "sdk.json").string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir / "sdk.json");
    const auto summary = Json::parse(slurp(dir / "sdk.json"));
    EXPECT_EQ(summary["status"], 200);
    EXPECT_GT(summary["chunks"].get<int>(), 1) << "not streamed";
    if (format == "pcm") {
      EXPECT_TRUE(slurp(out) == reference.body);
      EXPECT_EQ(summary["contentType"], "audio/pcm");
    } else {
      EXPECT_EQ(slurp(out).substr(0, 2), "\xFF\xF3");  // an MPEG-2 layer III frame
    }
  }
  // A wrong key is the SDK's AuthenticationError, exit non-zero.
  EXPECT_NE(std::system((node_client("openai_speech.mjs") + " " + base + " wrong " + model().voice +
                         " pcm " + (dir / "x").string() + " > /dev/null 2>&1")
                            .c_str()),
            0);
}

TEST(Serve, MetricsParseAsPrometheusText) {
  const auto dir = cosy::testing::scratch_dir("serve-metrics");
  ServerProcess server(model().dir, "", dir / "server.log");
  ASSERT_EQ(curl(dir, json_post(dir, server.url("/v1/audio/speech"), speech_body("pcm"))).status,
            200);
  const std::string cmd = node_client("check_metrics.mjs") + " " + server.url("/metrics") + " > " +
                          (dir / "check.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir / "check.txt");
  EXPECT_NE(slurp(dir / "check.txt").find("\"ttfa_count\":1"), std::string::npos)
      << slurp(dir / "check.txt");
}

}  // namespace

namespace {

Json ws_scenario(const fs::path& dir, const ServerProcess& server, const std::string& scenario) {
  const std::string url =
      "ws://127.0.0.1:" + std::to_string(server.port()) + "/v1/audio/speech/stream";
  const fs::path out = dir / ("ws-" + scenario + ".json");
  // A bound against a hang, not a speed test: random weights may speak to the length limit,
  // and CI runs this beside other tests on 2 cores.
  std::system(("WS_CLIENT_TIMEOUT_S=180 " + node_client("ws_session.mjs") + " " + url + " " +
               model().voice + " " + scenario + " > " + out.string() + " 2>&1")
                  .c_str());
  Json j = Json::parse(slurp(out), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << scenario << ": " << slurp(out);
  if (!j.is_object()) j = Json::object();
  // A client that timed out reports no close code: the callers read these keys from a const
  // Json, where a missing key is undefined behaviour, so they are always there.
  if (!j.contains("close")) j["close"] = 0;
  if (!j.contains("events")) j["events"] = Json::array();
  if (!j.contains("audio")) j["audio"] = Json::array({0});
  return j;
}

std::vector<std::string> event_types(const Json& result) {
  std::vector<std::string> types;
  for (const auto& e : result["events"]) types.push_back(e["type"]);
  return types;
}

TEST(Serve, WebSocketSpeaksTextAsItArrivesInBothModes) {
  const auto dir = cosy::testing::scratch_dir("serve-ws");
  ServerProcess server(model().dir, "", dir / "server.log");
  for (const std::string scenario : {"token", "sentence", "flush"}) {
    const Json r = ws_scenario(dir, server, scenario);
    EXPECT_EQ(r["close"], 1000) << scenario << ": " << r.dump();
    EXPECT_EQ(event_types(r),
              (std::vector<std::string>{"audio.start", "audio.done", "session.done"}))
        << scenario << ": " << r.dump();
    EXPECT_GT(r["audio"][0].get<int64_t>(), 24000) << scenario;
    const double seconds = r["events"][1]["usage"]["output_audio_seconds"];
    EXPECT_NEAR(seconds, r["audio"][0].get<double>() / 2 / 24000, 1e-6) << scenario;  // pcm
  }
  // Two utterances in turn on one connection, each with its own audio.
  const Json two = ws_scenario(dir, server, "two");
  EXPECT_EQ(event_types(two), (std::vector<std::string>{"audio.start", "audio.done", "audio.start",
                                                        "audio.done", "session.done"}))
      << two.dump();
  ASSERT_EQ(two["audio"].size(), 2u) << two.dump();
  EXPECT_GT(two["audio"][1].get<int64_t>(), 0);
}

// The quality guard on a model made to loop (make-model --hazard loop), through every
// transport: the SSE done event, the raw stream's header and trailer, the WebSocket's
// audio.done and /metrics all carry what it caught and did; a request may turn it off or
// tune it, and a bad setting is a 400 (an error frame on a WebSocket).
TEST(Serve, TheQualityGuardReportsOnEveryPath) {
  const auto dir = cosy::testing::scratch_dir("serve-guard");
  const fs::path looping = dir / "looping-model";
  const auto made =
      run("make-model --preset tiny --seed 4 --hazard loop --out " + looping.string());
  ASSERT_EQ(made.code, 0) << made.out;
  ServerProcess server(looping, "--guard", dir / "server.log");
  const std::string url = server.url("/v1/audio/speech");
  const std::string text = "Hello there, how are you today? Fine, thanks.";
  const auto done_event = [](const std::string& body) {
    Json done;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("data: ", 0) != 0) continue;
      const Json e = Json::parse(line.substr(6));
      if (e["type"] == "speech.audio.done") done = e;
    }
    return done;
  };
  const CurlResult sse =
      curl(dir, "-N " + json_post(dir, url, speech_body("pcm", text, R"(,"stream":true)")));
  ASSERT_EQ(sse.status, 200) << sse.body;
  const Json done = done_event(sse.body);
  ASSERT_TRUE(done.contains("quality")) << sse.body.substr(sse.body.size() - 500);
  const Json& q = done["quality"];
  EXPECT_EQ(q["guard"], true);
  EXPECT_GT(q["detected"]["run"].get<int64_t>() + q["detected"]["loop"].get<int64_t>(), 0) << q;
  EXPECT_GT(q["actions"]["masked"].get<int64_t>(), 0) << q;
  EXPECT_LE(q["longest_run"].get<int64_t>(), 15) << q;

  // Raw audio: the guard in the header, the report in the trailer (curl -D shows both).
  const CurlResult raw = curl(dir, json_post(dir, url, speech_body("pcm", text)));
  ASSERT_EQ(raw.status, 200);
  EXPECT_NE(raw.headers.find("X-Quality-Guard: on"), std::string::npos) << raw.headers;
  const auto at = raw.headers.find("X-Quality-Report: ");
  ASSERT_NE(at, std::string::npos) << raw.headers;
  const std::string line = raw.headers.substr(at + 18, raw.headers.find('\r', at) - at - 18);
  const Json trailer = Json::parse(line, nullptr, false);
  ASSERT_FALSE(trailer.is_discarded()) << line;
  EXPECT_EQ(trailer["guard"], true);

  // Off for one request: the model's own runs and loops go through, nothing is masked.
  const CurlResult off = curl(
      dir, "-N " + json_post(dir, url,
                             speech_body("pcm", text, R"(,"stream":true,"quality_guard":false)")));
  const Json q_off = done_event(off.body)["quality"];
  EXPECT_EQ(q_off["guard"], false) << off.body.substr(off.body.size() - 400);
  EXPECT_EQ(q_off["actions"]["masked"], 0);
  EXPECT_EQ(q_off["length_ratio"], 20);  // the official bound: the looping LM never stops

  // Beam search: the guard's masks become bans on the beams' candidates.
  const CurlResult beams = curl(
      dir,
      "-N " + json_post(dir, url, speech_body("pcm", text, R"(,"stream":true,"num_beams":3)")));
  ASSERT_EQ(beams.status, 200) << beams.body;
  const Json q_beams = done_event(beams.body)["quality"];
  EXPECT_LE(q_beams["longest_run"].get<int64_t>(), 15) << q_beams;
  EXPECT_EQ(q_beams["actions"]["rollbacks"], 0) << q_beams;
  const CurlResult too_many =
      curl(dir, json_post(dir, url, speech_body("pcm", text, R"(,"num_beams":17)")));
  EXPECT_EQ(too_many.status, 400);
  EXPECT_NE(too_many.body.find("\"param\":\"num_beams\""), std::string::npos) << too_many.body;

  const CurlResult bad = curl(
      dir, json_post(dir, url, speech_body("pcm", text, R"(,"quality_guard":{"loop_repeats":1})")));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"param\":\"quality_guard\""), std::string::npos) << bad.body;
  EXPECT_NE(bad.body.find("loop_repeats (K) must be >= 2"), std::string::npos) << bad.body;
  EXPECT_EQ(
      curl(dir, json_post(dir, url, speech_body("pcm", text, R"(,"quality_guard":{"beams":2})")))
          .status,
      400);

  const Json ws = ws_scenario(dir, server, "guarded");
  ASSERT_EQ(event_types(ws),
            (std::vector<std::string>{"audio.start", "audio.done", "session.done"}))
      << ws.dump();
  const Json& wq = ws["events"][1]["quality"];
  EXPECT_EQ(wq["guard"], true) << ws.dump();
  EXPECT_LE(wq["longest_run"].get<int64_t>(), 6) << ws.dump();  // the request's own max_run
  const Json ws_bad = ws_scenario(dir, server, "bad_guard");
  ASSERT_GE(ws_bad["events"].size(), 1u) << ws_bad.dump();
  EXPECT_EQ(ws_bad["events"][0]["type"], "error") << ws_bad.dump();

  const std::string m = curl(dir, server.url("/metrics")).body;
  EXPECT_GT(metric(m, "cosyserve_quality_actions_total\\{action=\"mask\"\\}"), 0) << m;
  // sse, raw, sse with beams, ws (with beams)
  EXPECT_EQ(metric(m, "cosyserve_quality_guarded_requests_total"), 4) << m;
  EXPECT_GT(metric(m, "cosyserve_quality_length_ratio_count"), 3) << m;
}

// Voices from recordings: POST /v1/audio/voices with curl's multipart upload, a voice kept
// across a restart, ref_audio for a one-off voice (the same audio as the registered one),
// instructions (instruct2), DELETE, and the same over the WebSocket.
TEST(Serve, VoicesFromRecordingsRegisterPersistAndSpeak) {
  const auto dir = cosy::testing::scratch_dir("serve-voices");
  const std::string store = (dir / "voices.pt").string();
  const fs::path recording = dir / "recording.wav";
  std::string with_voice;
  {
    ServerProcess server(model().dir, "--voice-store " + store, dir / "server.log");
    // A recording: the server's own speech, as WAV.
    const CurlResult rec =
        curl(dir, json_post(dir, server.url("/v1/audio/speech"), speech_body("wav")));
    ASSERT_EQ(rec.status, 200) << rec.body;
    std::ofstream(recording, std::ios::binary) << rec.body;
    const std::string voices = server.url("/v1/audio/voices");
    const std::string form =
        "-F audio_sample=@" + recording.string() + " -F 'ref_text=Hello there.' ";
    CurlResult r = curl(dir, form + "-F name=mine -F consent=recorded-consent-1 " + voices);
    ASSERT_EQ(r.status, 201) << r.body << server.log();
    EXPECT_EQ(Json::parse(r.body)["id"], "mine");
    r = curl(dir, form + "-F name=mine -F consent=c " + voices);
    EXPECT_EQ(r.status, 409) << r.body;
    r = curl(dir, form + "-F name=other " + voices);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("consent"), std::string::npos) << r.body;
    r = curl(dir, form + "-F 'name=../etc' -F consent=c " + voices);
    EXPECT_EQ(r.status, 400) << r.body;
    r = curl(dir, "-F audio_sample=@" + (dir / "server.log").string() +
                      " -F ref_text=x -F name=junk -F consent=c " + voices);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("not a readable audio file"), std::string::npos) << r.body;
    r = curl(dir, "-H 'Content-Type: application/json' -d '{}' " + voices);
    EXPECT_EQ(r.status, 415) << r.body;
    r = curl(dir, voices);
    const Json list = Json::parse(r.body);
    bool listed = false;
    for (const auto& v : list["voices"])
      listed = listed || (v["id"] == "mine" && v["custom"] == true);
    EXPECT_TRUE(listed) << r.body;

    const std::string url = server.url("/v1/audio/speech");
    const auto body = [](const std::string& fields) {
      return R"({"model":"cosyvoice2","input":"Good morning.","response_format":"pcm","seed":3,)" +
             fields + "}";
    };
    r = curl(dir, json_post(dir, url, body(R"("voice":"mine")")));
    ASSERT_EQ(r.status, 200) << r.body;
    with_voice = r.body;
    const std::string data_url = "data:audio/wav;base64," + base64_of_file(recording);
    r = curl(dir,
             json_post(dir, url,
                       body(R"("ref_audio":")" + data_url + R"(","ref_text":"Hello there.")")));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.body == with_voice) << "a one-off voice from the same recording speaks the same";
    r = curl(dir, json_post(dir, url, body(R"("voice":"mine","instructions":"Speak slowly.")")));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(r.body == with_voice) << "instructions change what the LM hears";
    r = curl(dir, json_post(
                      dir, url,
                      body(R"("ref_audio":")" + data_url + R"(","instructions":"Speak slowly.")")));
    EXPECT_EQ(r.status, 200) << r.body;
    // Cross-lingual: the LM hears no prompt; a one-off voice needs no transcript for it.
    r = curl(dir, json_post(dir, url, body(R"("voice":"mine","cross_lingual":true)")));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(r.body == with_voice) << "cross-lingual changes what the LM hears";
    r = curl(dir, json_post(dir, url,
                            body(R"("ref_audio":")" + data_url + R"(","cross_lingual":true)")));
    EXPECT_EQ(r.status, 200) << r.body;
    // Recordings in the compressed formats uploads come in: the server's own MP3, Ogg/Opus, FLAC.
    for (const std::string format : {"mp3", "opus", "flac"}) {
      const CurlResult enc = curl(dir, json_post(dir, url, speech_body(format)));
      ASSERT_EQ(enc.status, 200) << format;
      const fs::path file = dir / ("recording." + format);
      std::ofstream(file, std::ios::binary) << enc.body;
      const std::string mime = format == "mp3"    ? "audio/mpeg"
                               : format == "opus" ? "audio/ogg"
                                                  : "audio/flac";
      r = curl(dir, json_post(dir, url,
                              body(R"("ref_audio":"data:)" + mime + ";base64," +
                                   base64_of_file(file) + R"(","ref_text":"Hello there.")")));
      EXPECT_EQ(r.status, 200) << format << ": " << r.body;
    }

    ::setenv("REF_AUDIO_FILE", recording.c_str(), 1);
    const Json ws = ws_scenario(dir, server, "ref_audio");
    EXPECT_EQ(ws["close"], 1000) << ws.dump();
    EXPECT_GT(ws["audio"][0].get<int64_t>(), 0) << ws.dump();
    const Json inst = ws_scenario(dir, server, "instructions");
    EXPECT_EQ(inst["close"], 1000) << inst.dump();
    const Json cross = ws_scenario(dir, server, "cross_lingual");
    EXPECT_EQ(cross["close"], 1000) << cross.dump();
    EXPECT_GT(cross["audio"][0].get<int64_t>(), 0) << cross.dump();
    EXPECT_EQ(ws_scenario(dir, server, "cross_lingual_and_instructions")["close"], 1008);
    const Json bad = ws_scenario(dir, server, "bad_ref_audio");
    EXPECT_EQ(bad["close"], 1008) << bad.dump();
  }
  // A restart keeps the registered voice.
  ServerProcess server(model().dir, "--voice-store " + store, dir / "server2.log");
  CurlResult r = curl(
      dir,
      json_post(
          dir, server.url("/v1/audio/speech"),
          R"({"model":"cosyvoice2","input":"Good morning.","response_format":"pcm","seed":3,"voice":"mine"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.body == with_voice);
  r = curl(dir, "-X DELETE " + server.url("/v1/audio/voices/mine"));
  EXPECT_EQ(r.status, 200) << r.body;
  r = curl(dir, "-X DELETE " + server.url("/v1/audio/voices/mine"));
  EXPECT_EQ(r.status, 404) << r.body;
  r = curl(dir, server.url("/v1/audio/voices"));
  EXPECT_EQ(r.body.find("\"mine\""), std::string::npos) << r.body;
  EXPECT_EQ(curl(dir, server.url("/health")).status, 200);
}

TEST(Serve, WebSocketCancelStopsTheUtteranceNow) {
  const auto dir = cosy::testing::scratch_dir("serve-ws-cancel");
  ServerProcess server(model().dir, "", dir / "server.log");
  const Json r = ws_scenario(dir, server, "cancel");
  ASSERT_GE(r["events"].size(), 2u) << r.dump();
  EXPECT_EQ(r["events"][1]["type"], "audio.done") << r.dump();
  EXPECT_EQ(r["events"][1]["cancelled"], true) << r.dump();
  // Far less than the whole text's audio (40 long sentences: minutes of it).
  EXPECT_LT(r["audio"][0].get<int64_t>(), 24000 * 2 * 30) << r.dump();
  EXPECT_EQ(r["close"], 1000);
  const std::string m = curl(dir, server.url("/metrics")).body;
  EXPECT_EQ(metric(m, "cosyserve_streams_running"), 0) << m;
}

TEST(Serve, WebSocketProtocolErrorsGetAnErrorFrameAndACloseCode) {
  const auto dir = cosy::testing::scratch_dir("serve-ws-errors");
  ServerProcess server(model().dir, "--max-ws-message-bytes 4096 --ws-idle-timeout 1",
                       dir / "server.log");
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"bad_json", 1007, "invalid_json"},           {"binary", 1007, "binary_message"},
      {"unknown_type", 1008, "invalid_value"},      {"before_config", 1008, "invalid_value"},
      {"config_twice", 1008, "invalid_value"},      {"bad_voice", 1008, "invalid_value"},
      {"bad_format", 1008, "invalid_value"},        {"text_not_string", 1008, "invalid_value"},
      {"done_without_text", 1008, "invalid_value"}, {"silent", 1000, "idle_timeout"},
  };
  for (const auto& [scenario, close_code, error_code] : cases) {
    const Json r = ws_scenario(dir, server, scenario);
    EXPECT_EQ(r["close"], close_code) << scenario << ": " << r.dump();
    ASSERT_FALSE(r["events"].empty()) << scenario << ": " << r.dump();
    EXPECT_EQ(r["events"][0]["type"], "error") << scenario;
    EXPECT_EQ(r["events"][0]["code"], error_code) << scenario << ": " << r.dump();
  }
  // Over the message size limit: the WebSocket layer closes with 1009.
  EXPECT_EQ(ws_scenario(dir, server, "oversized")["close"], 1009);
  EXPECT_EQ(curl(dir, server.url("/health")).status, 200);
  // Without the upgrade, the endpoint says what it speaks.
  EXPECT_EQ(curl(dir, server.url("/v1/audio/speech/stream")).status, 426);
}

}  // namespace

namespace {

// A recording to upload as a voice: a fixture WAV when the fixtures are there (the first,
// by name), else speech the tiny model writes.
fs::path recording_for_upload(const fs::path& dir) {
  std::vector<fs::path> wavs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cosy::testing::golden_dir() / "cases", ec)) {
    if (e.path().extension() == ".wav") wavs.push_back(e.path());
  }
  if (!wavs.empty()) return *std::min_element(wavs.begin(), wavs.end());
  const fs::path made = dir / "made.wav";
  const auto r = run("synth --model " + model().dir.string() +
                     " --fixed-tokens 100 --text 'A recording.' --out " + made.string());
  EXPECT_EQ(r.code, 0) << r.out;
  return made;
}

// The playground page in Debian's Chromium, driven by Playwright (tests/clients/
// playground_test.mjs): speak, token streaming, a voice from a recording, a refusal shown,
// a server restart under the page, and an API key.
TEST(Serve, ThePlaygroundWorksInChromium) {
  const auto dir = cosy::testing::scratch_dir("serve-playground");
  const fs::path browser = std::getenv("CHROMIUM") ? std::getenv("CHROMIUM") : "/usr/bin/chromium";
  ASSERT_TRUE(fs::exists(browser)) << browser << " is missing: scripts/setup.sh --dev installs it";
  const std::string cmd = node_client("playground_test.mjs") + " " + COSY_CLI + " " +
                          model().dir.string() + " " + recording_for_upload(dir).string() + " " +
                          dir.string() + " > " + (dir / "out.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string out = slurp(dir / "out.txt");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(dir / "playground.png"));
}

}  // namespace

namespace {

// What HAProxy's agent-check reads: connect, read to the close (5 s at most).
std::string agent_line(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    char buf[64];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) line.append(buf, size_t(n));
  }
  close(fd);
  return line;
}

Json load_of(const fs::path& dir, const ServerProcess& server, const std::string& auth) {
  const CurlResult r = curl(dir, auth + server.url("/load"));
  EXPECT_EQ(r.status, 200) << r.body;
  Json j = Json::parse(r.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

// Polls GET /load until `ready` holds (20 s at most); the last answer.
template <typename Ready>
Json wait_for_load(const fs::path& dir, const ServerProcess& server, const std::string& auth,
                   Ready ready) {
  Json j;
  for (int i = 0; i < 400; ++i) {
    j = load_of(dir, server, auth);
    if (!j.empty() && ready(j)) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "GET /load never got there: " << j.dump();
  return j;
}

// GET /load says how busy the server is, now and over the last minute (and the agent-check
// port says the same to HAProxy); with a key set /load needs the key. The playground's files are
// public, with their headers and revalidation.
TEST(Serve, LoadSaysHowBusyTheServerIsAndThePageIsServed) {
  const auto dir = cosy::testing::scratch_dir("serve-load");
  ServerProcess server(model().dir, "--max-streams 2 --max-queue 0 --api-key k1 --agent-port 0",
                       dir / "server.log");
  std::smatch agent;
  const std::string log = server.log();
  ASSERT_TRUE(std::regex_search(log, agent, std::regex("agent-check on 127.0.0.1:([0-9]+)")))
      << log;
  const int agent_port = std::stoi(agent[1]);
  EXPECT_EQ(agent_line(agent_port), "ready up 100%\n");
  const std::string auth = "-H 'Authorization: Bearer k1' ";
  EXPECT_EQ(curl(dir, server.url("/load")).status, 401);
  Json load = load_of(dir, server, auth);
  EXPECT_EQ(load["streams_active"], 0) << load.dump();
  EXPECT_EQ(load["max_streams"], 2);
  EXPECT_EQ(load["free_capacity"], 100);
  EXPECT_EQ(load["first_audios"], 0);
  EXPECT_TRUE(load["ttfa_p99_s"].is_null());
  EXPECT_EQ(load["draining"], false);

  // One of the two slots held by a long stream: half the capacity is free, and its first
  // audio and the audio since count in the minute's figures as they happen.
  std::string text;
  for (int i = 0; i < 20; ++i) text += "Keep one stream busy for a while. ";
  std::ofstream(dir / "long.json") << speech_body("pcm", text);
  ASSERT_EQ(std::system(("curl -s -o /dev/null --max-time 60 " + auth +
                         "-H 'Content-Type: application/json' --data-binary @" +
                         (dir / "long.json").string() + " " + server.url("/v1/audio/speech") + " &")
                            .c_str()),
            0);
  load = wait_for_load(dir, server, auth, [](const Json& j) {
    return j["streams_active"] == 1 && j["first_audios"] == 1;
  });
  EXPECT_EQ(load["free_capacity"], 50) << load.dump();
  EXPECT_EQ(agent_line(agent_port), "ready up 50%\n");
  EXPECT_GT(load["ttfa_p99_s"].get<double>(), 0) << load.dump();
  EXPECT_EQ(load["ttfa_p50_s"], load["ttfa_p99_s"]) << "one stream: one value";
  EXPECT_GT(load["audio_s"].get<double>(), 0) << load.dump();
  EXPECT_NEAR(load["xrt"].get<double>(),
              load["audio_s"].get<double>() / load["window_s"].get<double>(), 1e-9);

  // The page: public, typed, with a policy that keeps it to this server; a 304 when unchanged.
  const CurlResult page = curl(dir, server.url("/"));
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("playground.js"), std::string::npos);
  EXPECT_NE(page.headers.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_NE(page.headers.find("Content-Security-Policy: default-src 'self'"), std::string::npos)
      << page.headers;
  std::smatch etag;
  ASSERT_TRUE(std::regex_search(page.headers, etag, std::regex("ETag: (\"[0-9a-f]{40}\")")))
      << page.headers;
  const CurlResult again =
      curl(dir, "-H 'If-None-Match: " + etag[1].str() + "' " + server.url("/"));
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  const CurlResult script = curl(dir, server.url("/playground/playground.js?v=1"));
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.headers.find("text/javascript"), std::string::npos);
  EXPECT_EQ(curl(dir, server.url("/playground/nothing.js")).status, 401) << "not an asset";
  EXPECT_EQ(curl(dir, "-X POST -d x " + server.url("/")).status, 405);

  // A browser's WebSocket offers the key as a subprotocol and gets "cosyserve" back.
  ::setenv("WS_API_KEY", "k1", 1);
  const Json keyed = ws_scenario(dir, server, "sentence");
  EXPECT_EQ(keyed["close"], 1000) << keyed.dump();
  EXPECT_EQ(keyed["protocol"], "cosyserve") << keyed.dump();
  ::setenv("WS_API_KEY", "wrong", 1);
  const Json refused = ws_scenario(dir, server, "sentence");
  EXPECT_NE(refused.value("error", "").find("401"), std::string::npos) << refused.dump();
  ::unsetenv("WS_API_KEY");

  // Draining: no capacity to offer, whatever is free.
  server.signal(SIGTERM);
  load = wait_for_load(dir, server, auth, [](const Json& j) { return j["draining"] == true; });
  EXPECT_EQ(load["free_capacity"], 0) << load.dump();
  EXPECT_EQ(agent_line(agent_port), "drain\n");
}

}  // namespace

namespace {

// Three instances behind Debian's nginx or HAProxy, configured with deploy/ (addresses and
// ports replaced): the spread, one instance SIGKILLed and one SIGTERMed under load
// (tests/clients/balancer_test.mjs).
void balancer_scenario(const std::string& balancer) {
  const auto dir = cosy::testing::scratch_dir("serve-balancer-" + balancer);
  const std::string program = balancer == "nginx" ? "/usr/sbin/nginx" : "/usr/sbin/haproxy";
  ASSERT_TRUE(fs::exists(program)) << program << " is missing: scripts/setup.sh --dev installs it";
  const std::string cmd = node_client("balancer_test.mjs") + " " + balancer + " " + COSY_CLI + " " +
                          model().dir.string() + " " + model().voice + " " + dir.string() + " > " +
                          (dir / "out.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string out = slurp(dir / "out.txt");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
}

TEST(Balancer, NginxSpreadsStreamsAndSurvivesAKillAndADrain) { balancer_scenario("nginx"); }
TEST(Balancer, HaproxyFollowsTheAgentWeightsAndSurvivesAKillAndADrain) {
  balancer_scenario("haproxy");
}

}  // namespace

namespace {

// deploy/k8s, the Grafana dashboard and the Dockerfile against the server they deploy
// (tests/clients/deploy_check.mjs): nothing here runs a cluster, so the fields that must
// agree with the server are checked, with a real instance started from the Deployment's args.
// A CosyVoice3 folder served: /v1/models names it cosyvoice3, speech comes over HTTP
// (curl) and over the WebSocket (the `ws` library) as text arrives, and the CosyVoice2 name
// is not found.
TEST(Serve, ACosyVoice3FolderServesSpeechAndTheWebSocket) {
  const auto dir = cosy::testing::scratch_dir("serve-cv3");
  const auto made =
      run("make-model --preset cosyvoice3-tiny --seed 4 --out " + (dir / "m").string());
  ASSERT_EQ(made.code, 0) << made.out;
  ServerProcess server(dir / "m", "", dir / "server.log");
  const CurlResult models = curl(dir, server.url("/v1/models"));
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(Json::parse(models.body)["data"][0]["id"], "cosyvoice3") << models.body;
  const std::string url = server.url("/v1/audio/speech");
  const std::string body = R"({"model":"cosyvoice3","voice":")" + model().voice +
                           R"(","input":"Hello there.","response_format":"pcm","seed":11})";
  const CurlResult pcm = curl(dir, json_post(dir, url, body));
  ASSERT_EQ(pcm.status, 200) << pcm.body << server.log();
  EXPECT_GT(pcm.body.size(), 2u * 480) << server.log();
  EXPECT_EQ(pcm.body.size() % (2 * 480), 0u);  // whole 20 ms frames
  const CurlResult again = curl(dir, json_post(dir, url, body));
  EXPECT_EQ(again.body, pcm.body);  // the same seed, the same audio
  std::string cv2 = body;
  cv2.replace(cv2.find("cosyvoice3"), 10, "cosyvoice2");
  EXPECT_EQ(curl(dir, json_post(dir, url, cv2)).status, 404);
  setenv("WS_MODEL", "cosyvoice3", 1);
  const Json ws = ws_scenario(dir, server, "token");
  unsetenv("WS_MODEL");
  EXPECT_EQ(ws["close"], 1000) << ws.dump() << server.log();
  EXPECT_EQ(event_types(ws),
            (std::vector<std::string>{"audio.start", "audio.done", "session.done"}))
      << ws.dump();
  EXPECT_GT(ws["audio"][0].get<int64_t>(), 0) << ws.dump();
}

TEST(Deploy, ManifestsDashboardAndContainerAgreeWithTheServer) {
  const auto dir = cosy::testing::scratch_dir("deploy-check");
  const std::string cmd = node_client("deploy_check.mjs") + " " + COSY_CLI + " " +
                          model().dir.string() + " " + dir.string() + " > " +
                          (dir / "out.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string out = slurp(dir / "out.txt");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
}

}  // namespace
