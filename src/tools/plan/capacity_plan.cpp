#include "tools/plan/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "tools/loadtest/svg_chart.h"

namespace cosy::plan {

using Json = nlohmann::json;

Sweep sweep_from_json(const Json& j, const std::string& source) {
  Sweep s;
  s.source = source;
  if (!j.is_object() || !j.contains("levels") || !j["levels"].is_array())
    fail(source, ": not a loadtest sweep (no 'levels' array; write one with loadtest --json)");
  if (j.contains("target") && j["target"].is_string()) s.target = j["target"];
  for (size_t i = 0; i < j["levels"].size(); ++i) {
    loadtest::LevelReport l;
    try {
      l = loadtest::level_from_json(j["levels"][i]);
    } catch (const Error& e) {
      fail(source, ": level ", i + 1, ": ", e.what());
    }
    if (l.mode != "closed") continue;  // capacity comes from closed-loop levels
    if (l.concurrency < 1) fail(source, ": level ", i + 1, ": concurrency below 1");
    s.levels.push_back(std::move(l));
  }
  if (s.levels.empty()) fail(source, ": no closed-loop levels (loadtest --concurrency ...)");
  std::sort(s.levels.begin(), s.levels.end(),
            [](const auto& a, const auto& b) { return a.concurrency < b.concurrency; });
  return s;
}

void Traffic::validate() const {
  if ((peak_streams > 0) == (rate > 0)) fail("give --peak-streams or --rate (one of them)");
  if (peak_streams < 0 || rate < 0) fail("traffic must be positive");
  if (rate > 0 && !(utterance_seconds > 0)) fail("--rate needs --utterance-seconds > 0");
  if (!(ttfa_p99_s > 0)) fail("--ttfa-p99 must be > 0");
  if (!(min_no_stall >= 0 && min_no_stall <= 1)) fail("--min-no-stall must be in [0, 1]");
  if (!(headroom >= 0 && headroom <= 10)) fail("--headroom must be in [0, 10]");
  if (!(overflow > 0 && overflow < 1)) fail("--overflow must be in (0, 1)");
  if (cost_per_hour < 0) fail("--cost-per-hour must be >= 0");
}

OperatingPoint operating_point(const Sweep& sweep, const Traffic& t) {
  const loadtest::LevelReport* best = nullptr;
  for (const auto& l : sweep.levels) {
    // Several levels at one concurrency (schedules): the best of them counts.
    const bool meets = l.failed == 0 && l.requests > 0 && l.first_audio_s.p99 <= t.ttfa_p99_s &&
                       l.no_stall_share >= t.min_no_stall;
    if (meets && (best == nullptr || l.concurrency > best->concurrency)) best = &l;
  }
  if (best == nullptr) {
    const auto& one = sweep.levels.front();
    fail("no measured level meets first audio p99 <= ", t.ttfa_p99_s, " s with ",
         100 * t.min_no_stall, " % of streams stall-free: at concurrency ", one.concurrency,
         " the instance gives p99 ", one.first_audio_s.p99, " s and ", 100 * one.no_stall_share,
         " % stall-free", one.failed > 0 ? cat(" (", one.failed, " failed)") : "",
         ". No number of these instances serves this traffic; relax the service levels or "
         "measure a faster instance");
  }
  return {best->concurrency,    best->schedule, best->first_audio_s.p99,
          best->no_stall_share, best->xrt,      best->rtf.p50};
}

int64_t poisson_quantile(double mean, double p) {
  if (mean <= 0) return 0;
  // Summed in log space: the terms stay finite for large means.
  double cdf = 0;
  for (int64_t k = 0;; ++k) {
    const double log_pmf =
        -mean + static_cast<double>(k) * std::log(mean) - std::lgamma(static_cast<double>(k) + 1);
    cdf += std::exp(log_pmf);
    if (1 - cdf <= p) return k;
    if (k > static_cast<int64_t>(mean + 50 * std::sqrt(mean) + 100)) return k;  // 1 - cdf ~ 0
  }
}

namespace {
int64_t instances_for(double needed, double capacity, double headroom) {
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(needed * (1 + headroom) / capacity - 1e-9)));
}
}  // namespace

Plan plan_capacity(const Sweep& sweep, const Traffic& t) {
  t.validate();
  Plan p;
  p.point = operating_point(sweep, t);
  const double capacity = static_cast<double>(p.point.concurrency);
  if (t.peak_streams > 0) {
    p.needed_streams = t.peak_streams;
  } else {
    // A stream holds its instance for its synthesis time (at least until its audio is
    // made: RTF × the utterance's seconds).
    const double hold_s = t.utterance_seconds * p.point.rtf_p50;
    p.offered_load = t.rate * hold_s;
    p.needed_streams = static_cast<double>(poisson_quantile(p.offered_load, t.overflow));
  }
  p.instances = instances_for(p.needed_streams, capacity, t.headroom);
  p.utilisation = p.needed_streams / (static_cast<double>(p.instances) * capacity);
  // Audio made per instance-hour at the needed load: each stream makes real-time audio
  // while it plays (1 audio second per second).
  const double audio_rate =
      t.rate > 0 ? t.rate * t.utterance_seconds : p.needed_streams;  // audio s per s
  p.audio_hours_per_instance_hour = audio_rate / static_cast<double>(p.instances);
  if (t.cost_per_hour > 0) {
    p.cost_per_hour = t.cost_per_hour * static_cast<double>(p.instances);
    p.cost_per_audio_hour = p.cost_per_hour / audio_rate;
  }
  for (const double f : {0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0}) {
    const double c = capacity * f;
    p.sensitivity.emplace_back(c, instances_for(p.needed_streams, c, t.headroom));
  }
  return p;
}

std::string format_plan(const Plan& p, const Traffic& t, const Sweep& s) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "sweep: %s (%zu levels)%s%s\n", s.source.c_str(),
                s.levels.size(), s.target.empty() ? "" : "\n  measured on: ", s.target.c_str());
  out += line;
  std::snprintf(line, sizeof line,
                "service levels: first audio p99 <= %.3f s, >= %.1f %% of streams stall-free\n",
                t.ttfa_p99_s, 100 * t.min_no_stall);
  out += line;
  std::snprintf(line, sizeof line,
                "operating point: %lld streams per instance%s (first audio p99 %.3f s, %.1f %% "
                "stall-free, xRT %.2f, RTF p50 %.3f)\n",
                static_cast<long long>(p.point.concurrency),
                p.point.schedule.empty() ? "" : cat(", ", p.point.schedule, " schedule").c_str(),
                p.point.ttfa_p99_s, 100 * p.point.no_stall, p.point.xrt, p.point.rtf_p50);
  out += line;
  if (t.rate > 0) {
    std::snprintf(line, sizeof line,
                  "traffic: %.3f requests/s of %.1f s audio: %.1f streams on average; %.0f at "
                  "the %.2f %% tail (Poisson)\n",
                  t.rate, t.utterance_seconds, p.offered_load, p.needed_streams, 100 * t.overflow);
  } else {
    std::snprintf(line, sizeof line, "traffic: %.0f concurrent streams at peak\n",
                  p.needed_streams);
  }
  out += line;
  std::snprintf(line, sizeof line,
                "\ninstances: %lld (headroom %.0f %%; %.1f %% used at the need)\n"
                "audio hours per instance-hour: %.2f\n",
                static_cast<long long>(p.instances), 100 * t.headroom, 100 * p.utilisation,
                p.audio_hours_per_instance_hour);
  out += line;
  if (t.cost_per_hour > 0) {
    std::snprintf(line, sizeof line, "cost: %.2f per hour, %.4f per audio hour\n", p.cost_per_hour,
                  p.cost_per_audio_hour);
    out += line;
  }
  out += "\nif one instance held   instances needed\n";
  for (const auto& [c, n] : p.sensitivity) {
    std::snprintf(line, sizeof line, "  %8.1f streams   %lld\n", c, static_cast<long long>(n));
    out += line;
  }
  return out;
}

Json to_json(const Plan& p, const Traffic& t) {
  Json sens = Json::array();
  for (const auto& [c, n] : p.sensitivity) sens.push_back({{"capacity", c}, {"instances", n}});
  return {{"operating_point",
           {{"concurrency", p.point.concurrency},
            {"schedule", p.point.schedule},
            {"ttfa_p99_s", p.point.ttfa_p99_s},
            {"no_stall_share", p.point.no_stall},
            {"xrt", p.point.xrt},
            {"rtf_p50", p.point.rtf_p50}}},
          {"traffic",
           {{"peak_streams", t.peak_streams},
            {"rate", t.rate},
            {"utterance_seconds", t.utterance_seconds},
            {"ttfa_p99_s", t.ttfa_p99_s},
            {"min_no_stall", t.min_no_stall},
            {"headroom", t.headroom},
            {"overflow", t.overflow}}},
          {"needed_streams", p.needed_streams},
          {"offered_load", p.offered_load},
          {"instances", p.instances},
          {"utilisation", p.utilisation},
          {"audio_hours_per_instance_hour", p.audio_hours_per_instance_hour},
          {"cost_per_hour", p.cost_per_hour},
          {"cost_per_audio_hour", p.cost_per_audio_hour},
          {"sensitivity", sens}};
}

std::string plan_chart(const Plan& p, const Traffic& t) {
  loadtest::ChartSeries curve{"instances needed"};
  for (const auto& [c, n] : p.sensitivity) curve.points.emplace_back(c, static_cast<double>(n));
  loadtest::ChartSeries point{"this sweep's operating point"};
  point.points.emplace_back(static_cast<double>(p.point.concurrency),
                            static_cast<double>(p.instances));
  char title[160];
  std::snprintf(title, sizeof title, "cosyserve plan: %.0f streams to serve, headroom %.0f %%",
                p.needed_streams, 100 * t.headroom);
  return loadtest::svg_chart(title, {{"Fleet size against one instance's capacity",
                                      "streams per instance",
                                      "instances",
                                      {curve, point},
                                      false}});
}

}  // namespace cosy::plan
