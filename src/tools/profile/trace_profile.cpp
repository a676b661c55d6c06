#include "tools/profile/trace_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "runtime/trace.h"
#include "tools/loadtest/load_report.h"

namespace cosy::profile {
namespace {

using Json = nlohmann::json;
namespace tt = trace_tracks;

struct Span {
  int pid = 0;
  int64_t tid = 0;
  std::string name;
  double begin = 0, end = 0;  // seconds
  const Json* args = nullptr;
};

struct Instant {
  int pid = 0;
  int64_t tid = 0;
  std::string name;
  double at = 0;
};

// Intervals covered by any of the spans, merged, in order.
std::vector<std::pair<double, double>> merged(std::vector<std::pair<double, double>> v) {
  std::sort(v.begin(), v.end());
  std::vector<std::pair<double, double>> out;
  for (const auto& iv : v) {
    if (!out.empty() && iv.first <= out.back().second) {
      out.back().second = std::max(out.back().second, iv.second);
    } else {
      out.push_back(iv);
    }
  }
  return out;
}

double overlap(double a0, double a1, double b0, double b1) {
  return std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
}

const Json& events_of(const Json& trace) {
  if (trace.is_array()) return trace;
  if (trace.is_object() && trace.contains("traceEvents") && trace["traceEvents"].is_array())
    return trace["traceEvents"];
  fail("not a trace: expected {\"traceEvents\": [...]} or an array of events");
}

}  // namespace

TraceProfile profile_trace(const Json& trace, const ProfileOptions& options) {
  std::vector<Span> spans;
  std::vector<Instant> instants;
  size_t index = 0;
  for (const Json& e : events_of(trace)) {
    ++index;
    if (!e.is_object() || !e.contains("ph") || !e["ph"].is_string())
      fail("trace event ", index, ": no 'ph'");
    const std::string ph = e["ph"];
    if (ph != "X" && ph != "i" && ph != "I") continue;
    for (const char* k : {"ts", "pid", "tid"}) {
      if (!e.contains(k) || !e[k].is_number())
        fail("trace event ", index, ": no numeric '", k, "'");
    }
    if (!e.contains("name") || !e["name"].is_string()) fail("trace event ", index, ": no 'name'");
    const double ts = e["ts"].get<double>() / 1e6;
    if (ph == "X") {
      if (!e.contains("dur") || !e["dur"].is_number() || e["dur"].get<double>() < 0)
        fail("trace event ", index, ": a span without a duration");
      spans.push_back({e["pid"].get<int>(), e["tid"].get<int64_t>(), e["name"], ts,
                       ts + e["dur"].get<double>() / 1e6,
                       e.contains("args") ? &e["args"] : nullptr});
    } else {
      instants.push_back({e["pid"].get<int>(), e["tid"].get<int64_t>(), e["name"], ts});
    }
  }
  TraceProfile p;
  const std::set<std::string> stage_names = {"llm", "flow", "vocoder"};
  auto is_stage = [&](const Span& s) {
    return s.pid == tt::kEngine && s.tid != tt::kScheduler && stage_names.count(s.name) > 0;
  };
  double t0 = INFINITY, t1 = -INFINITY;
  std::vector<std::pair<double, double>> busy;
  for (const Span& s : spans) {
    if (s.pid != tt::kEngine && s.pid != tt::kStreams) continue;
    t0 = std::min(t0, s.begin);
    t1 = std::max(t1, s.end);
    if (s.name == "sync") ++p.sync_points;
    if (!is_stage(s)) continue;
    busy.emplace_back(s.begin, s.end);
    StageProfile& st = p.stages[s.name];
    st.seconds += s.end - s.begin;
    ++st.calls;
    if (s.args != nullptr && s.args->contains("batch") && (*s.args)["batch"].is_number())
      ++st.batch_sizes[(*s.args)["batch"].get<int64_t>()];
  }
  if (busy.empty()) fail("the trace has no engine stage calls (was it written with --trace?)");
  p.wall_s = t1 - t0;
  const auto covered = merged(busy);
  for (const auto& [b, e] : covered) p.busy_s += e - b;
  for (auto& [name, st] : p.stages) {
    st.share = p.wall_s > 0 ? st.seconds / p.wall_s : 0;
    std::vector<double> waits;
    for (const Span& s : spans) {
      if (s.pid == tt::kStreams && s.name == "waiting for " + name)
        waits.push_back(s.end - s.begin);
    }
    st.queue_waits = static_cast<int64_t>(waits.size());
    st.queue_p50_s = loadtest::percentile(waits, 50);
    st.queue_p99_s = loadtest::percentile(waits, 99);
  }

  // Bubbles: gaps between stage calls while some stream's work was waiting for a stage.
  // The spans that may fill a gap, by start: those starting within the longest span's
  // length before it.
  std::vector<const Span*> others;
  double longest = 0;
  for (const Span& s : spans) {
    if (is_stage(s)) continue;
    others.push_back(&s);
    longest = std::max(longest, s.end - s.begin);
  }
  std::sort(others.begin(), others.end(),
            [](const Span* a, const Span* b) { return a->begin < b->begin; });
  for (size_t i = 0; i + 1 < covered.size(); ++i) {
    const double g0 = covered[i].second, g1 = covered[i + 1].first;
    if (g1 - g0 < options.min_bubble_s) continue;
    std::set<std::string> waiting;
    std::map<std::string, double> filled;
    auto it = std::lower_bound(others.begin(), others.end(), g0 - longest,
                               [](const Span* a, double t) { return a->begin < t; });
    for (; it != others.end() && (*it)->begin < g1; ++it) {
      const Span& s = **it;
      const double ov = overlap(s.begin, s.end, g0, g1);
      if (ov <= 0) continue;
      if (s.pid == tt::kStreams && s.name.rfind("waiting for ", 0) == 0) {
        const std::string what = s.name.substr(12);
        if (stage_names.count(what) > 0) waiting.insert(what);
      } else if (s.pid == tt::kStreams && s.name == "to client") {
        filled["handing audio to clients"] += ov;
      } else if (s.pid == tt::kEngine && s.tid == tt::kScheduler) {
        filled["scheduler: " + s.name] += ov;
      } else if (s.name == "sync") {
        filled["backend sync"] += ov;
      }
    }
    if (waiting.empty()) continue;  // nothing to do then: not a bubble
    Bubble b;
    b.at_s = g0 - t0;
    b.seconds = g1 - g0;
    b.waiting.assign(waiting.begin(), waiting.end());
    double best = 0;
    for (const auto& [what, s] : filled) {
      if (s > best) best = s, b.cause = what;
    }
    if (b.cause.empty() || best < 0.5 * b.seconds) {
      b.cause = b.cause.empty() ? "nothing recorded (scheduler between passes, or the OS)"
                                : b.cause + ", and time nothing recorded";
    }
    p.bubble_s += b.seconds;
    p.bubbles.push_back(std::move(b));
  }
  std::sort(p.bubbles.begin(), p.bubbles.end(),
            [](const Bubble& a, const Bubble& b) { return a.seconds > b.seconds; });

  // First chunks: each stream's states between its opening and its first audio.
  std::map<int64_t, double> opened, first;
  for (const Instant& i : instants) {
    if (i.pid != tt::kStreams) continue;
    if (i.name == "opened") opened[i.tid] = i.at;
    if (i.name == "first audio" && !first.count(i.tid)) first[i.tid] = i.at;
  }
  p.streams = static_cast<int64_t>(opened.size());
  for (const auto& [stream, at] : first) {
    if (!opened.count(stream)) continue;
    FirstChunk f;
    f.stream = stream;
    f.seconds = at - opened[stream];
    for (const Span& s : spans) {
      if (s.pid != tt::kStreams || s.tid != stream) continue;
      const double ov = overlap(s.begin, s.end, opened[stream], at);
      if (ov > 0) f.parts[s.name] += ov;
    }
    p.slowest_first_chunks.push_back(std::move(f));
  }
  std::sort(p.slowest_first_chunks.begin(), p.slowest_first_chunks.end(),
            [](const FirstChunk& a, const FirstChunk& b) { return a.seconds > b.seconds; });
  if (p.slowest_first_chunks.size() > options.top) p.slowest_first_chunks.resize(options.top);
  return p;
}

std::string format_profile(const TraceProfile& p) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "wall %.3f s; a stage running %.1f %% of it; %lld streams; %lld sync points\n",
                p.wall_s, p.wall_s > 0 ? 100 * p.busy_s / p.wall_s : 0.0,
                static_cast<long long>(p.streams), static_cast<long long>(p.sync_points));
  out += line;
  std::snprintf(line, sizeof line, "\n%-8s %9s %7s %7s %9s %12s %12s\n", "stage", "seconds",
                "share", "calls", "mean bat", "queue p50", "queue p99");
  out += line;
  for (const auto& [name, st] : p.stages) {
    int64_t items = 0;
    for (const auto& [size, n] : st.batch_sizes) items += size * n;
    std::snprintf(line, sizeof line, "%-8s %9.3f %6.1f%% %7lld %9.2f %10.1f ms %10.1f ms\n",
                  name.c_str(), st.seconds, 100 * st.share, static_cast<long long>(st.calls),
                  st.calls > 0 ? static_cast<double>(items) / static_cast<double>(st.calls) : 0.0,
                  1e3 * st.queue_p50_s, 1e3 * st.queue_p99_s);
    out += line;
  }
  out += "\nbatch sizes (size: calls)\n";
  for (const auto& [name, st] : p.stages) {
    out += "  ";
    out += name;
    out += ":";
    for (const auto& [size, n] : st.batch_sizes) {
      std::snprintf(line, sizeof line, " %lld:%lld", static_cast<long long>(size),
                    static_cast<long long>(n));
      out += line;
    }
    out += "\n";
  }
  std::snprintf(
      line, sizeof line,
      "\nbubbles (no stage running while work waited): %zu, %.3f s (%.1f %% of the wall)\n",
      p.bubbles.size(), p.bubble_s, p.wall_s > 0 ? 100 * p.bubble_s / p.wall_s : 0.0);
  out += line;
  for (size_t i = 0; i < p.bubbles.size() && i < 10; ++i) {
    const Bubble& b = p.bubbles[i];
    std::string waiting;
    for (const auto& w : b.waiting) waiting += (waiting.empty() ? "" : ", ") + w;
    std::snprintf(line, sizeof line, "  at %9.3f s: %8.2f ms, %s waited; %s\n", b.at_s,
                  1e3 * b.seconds, waiting.c_str(), b.cause.c_str());
    out += line;
  }
  out += "\nslowest first chunks (opened -> first audio)\n";
  for (const FirstChunk& f : p.slowest_first_chunks) {
    std::snprintf(line, sizeof line, "  stream %lld: %.3f s =", static_cast<long long>(f.stream),
                  f.seconds);
    out += line;
    std::vector<std::pair<double, std::string>> parts;
    for (const auto& [name, s] : f.parts) parts.emplace_back(s, name);
    std::sort(parts.rbegin(), parts.rend());
    for (const auto& [s, name] : parts) {
      std::snprintf(line, sizeof line, " %s %.3f s;", name.c_str(), s);
      out += line;
    }
    out += "\n";
  }
  return out;
}

nlohmann::json to_json(const TraceProfile& p) {
  Json stages = Json::object();
  for (const auto& [name, st] : p.stages) {
    Json sizes = Json::object();
    for (const auto& [size, n] : st.batch_sizes) sizes[std::to_string(size)] = n;
    stages[name] = {{"seconds", st.seconds},
                    {"share", st.share},
                    {"calls", st.calls},
                    {"batch_sizes", sizes},
                    {"queue_p50_s", st.queue_p50_s},
                    {"queue_p99_s", st.queue_p99_s},
                    {"queue_waits", st.queue_waits}};
  }
  Json bubbles = Json::array();
  for (const Bubble& b : p.bubbles)
    bubbles.push_back(
        {{"at_s", b.at_s}, {"seconds", b.seconds}, {"cause", b.cause}, {"waiting", b.waiting}});
  Json firsts = Json::array();
  for (const FirstChunk& f : p.slowest_first_chunks)
    firsts.push_back({{"stream", f.stream}, {"seconds", f.seconds}, {"parts", f.parts}});
  return {{"wall_s", p.wall_s},
          {"busy_s", p.busy_s},
          {"stages", stages},
          {"bubbles", bubbles},
          {"bubble_s", p.bubble_s},
          {"streams", p.streams},
          {"slowest_first_chunks", firsts},
          {"sync_points", p.sync_points}};
}

}  // namespace cosy::profile
