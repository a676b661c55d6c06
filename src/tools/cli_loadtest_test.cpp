// End-to-end: `cosyserve loadtest` as a user runs it, in process and against a running
// server (REST and WebSocket), and its clear errors on bad input.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/trace.h"
#include "tools/cli_test_util.h"
#include "tools/serve_test_util.h"

namespace {

namespace fs = std::filesystem;
using cosy::tools::testing::run;
using cosy::tools::testing::ServerProcess;
using cosy::tools::testing::slurp;
using cosy::tools::testing::tiny_model;
using Json = nlohmann::json;

std::string voice_of(const fs::path& model) {
  const auto j = Json::parse(run("inspect --json --model " + model.string()).out);
  return j["voices"][0]["id"];
}

Json read_json(const fs::path& p) {
  Json j = Json::parse(slurp(p), nullptr, false);
  EXPECT_TRUE(j.is_object()) << slurp(p);
  return j.is_object() ? j : Json::object();
}

// Two concurrencies under both schedules, on the same requests: every level measured, the
// same lengths under both, and a chart.
TEST(Loadtest, InProcessSweepUnderBothSchedules) {
  const auto dir = cosy::testing::scratch_dir("loadtest-inproc");
  const auto r = run("loadtest --model " + tiny_model().string() +
                     " --concurrency 1,2 --requests 2 --warmup-requests 1 "
                     "--tokens-per-text-token 2 --schedule lockstep,deadline --json " +
                     (dir / "sweep.json").string() + " --chart " + (dir / "sweep.svg").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("forced: 2.00 ± 0.30 speech tokens per text token"), std::string::npos)
      << r.out;
  const Json j = read_json(dir / "sweep.json");
  ASSERT_EQ(j["levels"].size(), 4u) << j.dump();
  std::map<int64_t, std::map<std::string, double>> audio;
  for (const Json& l : j["levels"]) {
    EXPECT_EQ(l["requests"], 2);
    EXPECT_EQ(l["failed"], 0) << l.dump();
    EXPECT_GT(l["xrt"].get<double>(), 0);
    EXPECT_GT(l["first_audio_s"]["p50"].get<double>(), 0);
    EXPECT_GE(l["first_audio_s"]["p99"].get<double>(), l["first_audio_s"]["p50"].get<double>());
    EXPECT_GT(l["stages"]["llm"]["calls"].get<int64_t>(), 0);
    EXPECT_GT(l["gflop_per_audio_s"].get<double>(), 0);
    double total = 0;
    for (const Json& s : l["streams"]) total += s["audio_s"].get<double>();
    audio[l["concurrency"]][l["schedule"]] = total;
  }
  for (const auto& [c, by_schedule] : audio) {
    EXPECT_EQ(by_schedule.at("lockstep"), by_schedule.at("deadline"))
        << "the same requests under both schedules, c=" << c;
  }
  const std::string svg = slurp(dir / "sweep.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("(deadline)"), std::string::npos);

  // The sweep plans a fleet: at most 2 streams per instance were measured, so 100 streams
  // need at least 50 instances (60 with the default 20 % headroom, at c = 2).
  const auto plan = run("plan --sweep " + (dir / "sweep.json").string() +
                        " --peak-streams 100 --ttfa-p99 60 --min-no-stall 0 --json " +
                        (dir / "plan.json").string() + " --chart " + (dir / "plan.svg").string());
  ASSERT_EQ(plan.code, 0) << plan.out;
  const Json p = read_json(dir / "plan.json");
  EXPECT_EQ(p["operating_point"]["concurrency"], 2) << p.dump();
  EXPECT_EQ(p["instances"], 60) << p.dump();
  EXPECT_EQ(slurp(dir / "plan.svg").rfind("<svg", 0), 0u);

  // Text fed at a chat LLM's pace, through the bistream path.
  const auto paced = run("loadtest --model " + tiny_model().string() +
                         " --concurrency 1 --requests 2 --warmup-requests 0 --text-rate 40 "
                         "--tokens-per-text-token 2 --buffer-ms 200");
  ASSERT_EQ(paced.code, 0) << paced.out;
  EXPECT_NE(paced.out.find("text fed at 40 pieces/s"), std::string::npos) << paced.out;
}

TEST(Loadtest, AgainstARunningServerOverRestAndWebSocket) {
  const auto dir = cosy::testing::scratch_dir("loadtest-server");
  const fs::path model = tiny_model();
  ServerProcess server(model, "", dir / "server.log");
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string common =
      " --voice " + voice_of(model) + " --requests 2 --warmup-requests 1 --tokens-per-text-token 2";
  auto r = run("loadtest --url " + url + common + " --concurrency 2 --json " +
               (dir / "rest.json").string());
  ASSERT_EQ(r.code, 0) << r.out << server.log();
  Json j = read_json(dir / "rest.json");
  ASSERT_EQ(j["levels"].size(), 1u);
  EXPECT_EQ(j["levels"][0]["failed"], 0) << j.dump();
  EXPECT_GT(j["levels"][0]["mean_audio_s"].get<double>(), 0);
  r = run("loadtest --url " + url + common + " --concurrency 1 --text-rate 50 --json " +
          (dir / "ws.json").string());
  ASSERT_EQ(r.code, 0) << r.out << server.log();
  j = read_json(dir / "ws.json");
  EXPECT_EQ(j["levels"][0]["failed"], 0) << j.dump();
  EXPECT_GT(j["levels"][0]["first_audio_s"]["p50"].get<double>(), 0);
  // A voice the server lacks: every request fails, with the server's message.
  r = run("loadtest --url " + url +
          " --voice nobody --requests 1 --warmup-requests 0 --concurrency 1");
  EXPECT_EQ(r.code, 0) << r.out;  // a load test reports failures; it does not hide them
  EXPECT_NE(r.out.find("error: HTTP 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nobody"), std::string::npos) << r.out;
}

// Chrome's trace-event format as Perfetto reads it: every event named and placed, spans
// with durations, metadata with names, and the spans of each track nested (a slice that
// overlaps another without containing it is drawn wrongly).
void expect_valid_trace(const Json& trace) {
  ASSERT_TRUE(trace.is_object() && trace.contains("traceEvents") &&
              trace["traceEvents"].is_array());
  std::map<std::pair<int, int64_t>, std::vector<std::pair<double, double>>> tracks;
  for (const Json& e : trace["traceEvents"]) {
    ASSERT_TRUE(e.contains("name") && e["name"].is_string()) << e.dump();
    ASSERT_TRUE(e.contains("ph") && e["ph"].is_string()) << e.dump();
    ASSERT_TRUE(e.contains("pid") && e["pid"].is_number_integer()) << e.dump();
    ASSERT_TRUE(e.contains("tid") && e["tid"].is_number_integer()) << e.dump();
    const std::string ph = e["ph"];
    ASSERT_TRUE(ph == "X" || ph == "i" || ph == "M" || ph == "C") << e.dump();
    if (ph == "M") {
      EXPECT_TRUE(e["args"].contains("name") || e["args"].contains("sort_index")) << e.dump();
      continue;
    }
    ASSERT_TRUE(e.contains("ts") && e["ts"].is_number() && e["ts"].get<double>() >= 0) << e.dump();
    if (ph == "X") {
      ASSERT_TRUE(e.contains("dur") && e["dur"].get<double>() >= 0) << e.dump();
      tracks[{e["pid"], e["tid"]}].emplace_back(e["ts"].get<double>(),
                                                e["ts"].get<double>() + e["dur"].get<double>());
    }
    if (ph == "i") {
      EXPECT_TRUE(e.contains("s")) << e.dump();
    }
    if (ph == "C") {
      EXPECT_TRUE(e["args"].is_object()) << e.dump();
    }
  }
  for (auto& [track, spans] : tracks) {
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    std::vector<double> open_ends;
    for (const auto& [b, e] : spans) {
      while (!open_ends.empty() && open_ends.back() <= b + 1e-3) open_ends.pop_back();
      if (!open_ends.empty()) {
        EXPECT_LE(e, open_ends.back() + 1e-3)
            << "track " << track.first << "/" << track.second << ": a span at " << b
            << " us overlaps its parent without nesting";
      }
      open_ends.push_back(e);
    }
  }
}

TEST(Loadtest, ItsTraceOpensInPerfettoAndProfileReadsIt) {
  const auto dir = cosy::testing::scratch_dir("loadtest-trace");
  const fs::path trace = dir / "trace.json";
  auto r = run("loadtest --model " + tiny_model().string() +
               " --concurrency 2 --requests 3 --warmup-requests 0 --tokens-per-text-token 2 "
               "--trace " +
               trace.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const Json j = read_json(trace);
  expect_valid_trace(j);
  std::set<std::string> names;
  for (const Json& e : j["traceEvents"]) names.insert(e["name"].get<std::string>());
  for (const char* n :
       {"llm", "flow", "vocoder", "plan", "sync", "waiting for admission", "first audio", "opened",
        "ended", "request", "to client", "waiting for voice prompt state"}) {
    EXPECT_TRUE(names.count(n)) << "no '" << n << "' event";
  }
  // The voice's prompt state, computed beside the stages' calls on a track of its own.
  int prompt_states = 0;
  for (const Json& e : j["traceEvents"]) {
    if (e["ph"] == "X" && e["pid"] == cosy::trace_tracks::kEngine &&
        e["tid"] == cosy::trace_tracks::kVoicePrompts &&
        e["args"].value("voice prompt state", false))
      ++prompt_states;
  }
  EXPECT_EQ(prompt_states, 1);
  r = run("profile " + trace.string() + " --json " + (dir / "profile.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("slowest first chunks"), std::string::npos) << r.out;
  const Json p = read_json(dir / "profile.json");
  EXPECT_EQ(p["streams"], 3);
  EXPECT_GT(p["stages"]["flow"]["calls"].get<int64_t>(), 0);
  // Not a trace: a clear error.
  r = run("profile " + (dir / "profile.json").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("not a trace"), std::string::npos) << r.out;
}

TEST(Plan, BadSweepsAndImpossibleTrafficAreClearErrors) {
  const auto dir = cosy::testing::scratch_dir("plan-bad");
  std::ofstream(dir / "junk.json") << "{not json";
  auto r = run("plan --sweep " + (dir / "junk.json").string() + " --peak-streams 10");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("not JSON"), std::string::npos) << r.out;
  std::ofstream(dir / "nolevels.json") << R"({"tool":"x"})";
  r = run("plan --sweep " + (dir / "nolevels.json").string() + " --peak-streams 10");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no 'levels' array"), std::string::npos) << r.out;
  std::ofstream(dir / "one.json") << R"({"levels":[{"mode":"closed","schedule":"deadline",
      "concurrency":1,"rate":0,"requests":4,"failed":0,"window_s":10,"xrt":2,
      "first_audio_s":{"p50":0.5,"p90":0.6,"p99":0.7,"max":0.7},
      "rtf":{"p50":0.5,"p90":0.5,"p99":0.5,"max":0.5},
      "stall_s":{"p50":0,"p90":0,"p99":0,"max":0},"no_stall_share":1,"mean_audio_s":4}]})";
  r = run("plan --sweep " + (dir / "one.json").string() + " --peak-streams 10 --ttfa-p99 0.2");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("No number of these instances serves this traffic"), std::string::npos)
      << r.out;
  r = run("plan --sweep " + (dir / "one.json").string() + " --peak-streams 10 --rate 2");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run("plan --sweep " + (dir / "one.json").string() + " --peak-streams 10");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("instances: 12"), std::string::npos) << r.out;  // 10 × 1.2
}

// A loopback port with nothing listening on it.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(Loadtest, BadInputIsAClearError) {
  const auto dir = cosy::testing::scratch_dir("loadtest-bad");
  const std::string model = " --model " + tiny_model().string();
  auto r = run("loadtest --url http://127.0.0.1:" + std::to_string(closed_port()) + " --voice v");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot reach http://127.0.0.1:"), std::string::npos) << r.out;
  r = run("loadtest --url https://example.com --voice v");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("https is not supported"), std::string::npos) << r.out;
  std::ofstream(dir / "empty.txt") << "# nothing but a comment\n\n";
  r = run("loadtest" + model + " --corpus " + (dir / "empty.txt").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no sentences"), std::string::npos) << r.out;
  std::ofstream(dir / "latin1.txt") << "caf\xE9\n";
  r = run("loadtest" + model + " --corpus " + (dir / "latin1.txt").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("line 1 is not UTF-8"), std::string::npos) << r.out;
  r = run("loadtest" + model + " --chart out.png");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("only SVG"), std::string::npos) << r.out;
  r = run("loadtest" + model + " --url http://127.0.0.1:1");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run("loadtest" + model + " --concurrency 0");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
