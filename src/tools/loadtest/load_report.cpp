#include "tools/loadtest/load_report.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy::loadtest {

using Json = nlohmann::json;

StreamFigures stream_figures(const StreamRecord& r, double buffer_s) {
  StreamFigures f;
  f.id = r.id;
  f.sent_s = r.sent_s;
  f.ok = r.ok;
  f.error = r.error;
  const Playback p = listen(r.arrivals, buffer_s, r.ended_s);
  f.first_audio_s = p.first_audio_s;
  f.audio_s = p.audio_s;
  f.total_s = r.ended_s;
  f.rtf = p.audio_s > 0 ? r.ended_s / p.audio_s : 0;
  f.stalls = p.stalls;
  f.stall_s = p.stall_s;
  return f;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

Quantiles quantiles(const std::vector<double>& v) {
  if (v.empty()) return {};
  return {percentile(v, 50), percentile(v, 90), percentile(v, 99),
          *std::max_element(v.begin(), v.end())};
}

LevelReport summarize(const std::string& mode, int64_t concurrency, double rate,
                      const std::vector<StreamRecord>& records, int64_t first_measured_id,
                      double window_from_s, double window_to_s, double buffer_s) {
  LevelReport r;
  r.mode = mode;
  r.concurrency = concurrency;
  r.rate = rate;
  r.window_s = std::max(0.0, window_to_s - window_from_s);
  std::vector<double> first, rtf, stall;
  int64_t clean = 0, ok = 0;
  double audio = 0;
  for (const StreamRecord& rec : records) {
    for (const Arrival& a : rec.arrivals) {
      const double at = rec.sent_s + a.at_s;
      if (at >= window_from_s && at <= window_to_s) r.audio_in_window_s += a.audio_s;
    }
    if (rec.id < first_measured_id) continue;
    StreamFigures f = stream_figures(rec, buffer_s);
    ++r.requests;
    if (!f.ok) {
      ++r.failed;
      if (r.errors.size() < 5 &&
          std::find(r.errors.begin(), r.errors.end(), f.error) == r.errors.end()) {
        r.errors.push_back(f.error);
      }
    } else {
      ++ok;
      first.push_back(f.first_audio_s);
      rtf.push_back(f.rtf);
      stall.push_back(f.stall_s);
      audio += f.audio_s;
      r.stalls += f.stalls;
      if (f.stalls == 0) ++clean;
    }
    r.streams.push_back(std::move(f));
  }
  std::sort(r.streams.begin(), r.streams.end(),
            [](const StreamFigures& a, const StreamFigures& b) { return a.id < b.id; });
  r.xrt = r.window_s > 0 ? r.audio_in_window_s / r.window_s : 0;
  r.first_audio_s = quantiles(first);
  r.rtf = quantiles(rtf);
  r.stall_s = quantiles(stall);
  r.no_stall_share = ok > 0 ? static_cast<double>(clean) / static_cast<double>(ok) : 0;
  r.mean_audio_s = ok > 0 ? audio / static_cast<double>(ok) : 0;
  return r;
}

namespace {

Json quantiles_json(const Quantiles& q) {
  return {{"p50", q.p50}, {"p90", q.p90}, {"p99", q.p99}, {"max", q.max}};
}

Quantiles quantiles_from(const Json& j, const char* name) {
  if (!j.contains(name) || !j[name].is_object()) fail("'", name, "' is missing");
  const Json& q = j[name];
  auto get = [&](const char* k) {
    if (!q.contains(k) || !q[k].is_number()) fail("'", name, ".", k, "' is missing");
    return q[k].get<double>();
  };
  return {get("p50"), get("p90"), get("p99"), get("max")};
}

Json stage_json(const StageStats& s) {
  return {{"seconds", s.seconds},
          {"calls", s.calls},
          {"mean_batch",
           s.calls > 0 ? static_cast<double>(s.items) / static_cast<double>(s.calls) : 0.0},
          {"batch_sizes", s.batch_sizes},
          {"gflop", s.flops / 1e9}};
}

}  // namespace

Json to_json(const LevelReport& r, bool with_streams) {
  Json j = {{"mode", r.mode},
            {"schedule", r.schedule},
            {"concurrency", r.concurrency},
            {"rate", r.rate},
            {"requests", r.requests},
            {"failed", r.failed},
            {"errors", r.errors},
            {"window_s", r.window_s},
            {"audio_in_window_s", r.audio_in_window_s},
            {"xrt", r.xrt},
            {"first_audio_s", quantiles_json(r.first_audio_s)},
            {"rtf", quantiles_json(r.rtf)},
            {"stall_s", quantiles_json(r.stall_s)},
            {"no_stall_share", r.no_stall_share},
            {"stalls", r.stalls},
            {"mean_audio_s", r.mean_audio_s}};
  if (r.stages) {
    j["stages"] = {{"llm", stage_json(r.stages->llm)},
                   {"flow", stage_json(r.stages->flow)},
                   {"hift", stage_json(r.stages->hift)}};
  }
  if (with_streams) {
    Json streams = Json::array();
    for (const StreamFigures& f : r.streams) {
      Json s = {{"id", f.id},           {"sent_s", f.sent_s},   {"ok", f.ok},
                {"audio_s", f.audio_s}, {"total_s", f.total_s}, {"rtf", f.rtf},
                {"stalls", f.stalls},   {"stall_s", f.stall_s}};
      s["first_audio_s"] = f.first_audio_s;
      if (!f.ok) s["error"] = f.error;
      streams.push_back(std::move(s));
    }
    j["streams"] = std::move(streams);
  }
  return j;
}

LevelReport level_from_json(const Json& j) {
  if (!j.is_object()) fail("a level is not an object");
  LevelReport r;
  auto number = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_number()) fail("'", k, "' is missing or not a number");
    return j[k].get<double>();
  };
  if (!j.contains("mode") || !j["mode"].is_string()) fail("'mode' is missing");
  r.mode = j["mode"].get<std::string>();
  if (j.contains("schedule") && j["schedule"].is_string()) r.schedule = j["schedule"];
  r.concurrency = static_cast<int64_t>(number("concurrency"));
  r.rate = number("rate");
  r.requests = static_cast<int64_t>(number("requests"));
  r.failed = static_cast<int64_t>(number("failed"));
  r.window_s = number("window_s");
  r.xrt = number("xrt");
  r.first_audio_s = quantiles_from(j, "first_audio_s");
  r.rtf = quantiles_from(j, "rtf");
  r.stall_s = quantiles_from(j, "stall_s");
  r.no_stall_share = number("no_stall_share");
  r.mean_audio_s = number("mean_audio_s");
  return r;
}

}  // namespace cosy::loadtest
