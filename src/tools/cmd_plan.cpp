// cosyserve plan: how many instances (cards, machines) a traffic profile needs, from a
// loadtest sweep measured on one of them. Method and limits: docs/capacity.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/plan/capacity_plan.h"

namespace cosy::tools {
namespace {

struct PlanOptions {
  std::string sweep, json, chart;
  plan::Traffic traffic;
};

int run_plan(const PlanOptions& o) {
  try {
    o.traffic.validate();
  } catch (const Error& e) {
    usage_fail(e.what());
  }
  const auto j = nlohmann::json::parse(read_whole_file(o.sweep), nullptr, false);
  if (j.is_discarded()) fail(o.sweep, ": not JSON (expected a loadtest --json sweep)");
  const plan::Sweep sweep = plan::sweep_from_json(j, o.sweep);
  const plan::Plan p = plan::plan_capacity(sweep, o.traffic);
  std::fputs(plan::format_plan(p, o.traffic, sweep).c_str(), stdout);
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << plan::to_json(p, o.traffic).dump(2) << "\n";
    if (!out) fail(o.json, ": cannot write");
  }
  if (!o.chart.empty()) {
    std::ofstream out(o.chart);
    out << plan::plan_chart(p, o.traffic);
    if (!out) fail(o.chart, ": cannot write");
  }
  return 0;
}

}  // namespace

Command register_plan(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  plan::Traffic& t = o->traffic;
  app.add_option("--sweep", o->sweep, "A loadtest --json sweep measured on one instance")
      ->required();
  app.add_option("--peak-streams", t.peak_streams, "Traffic: concurrent streams at peak");
  app.add_option("--rate", t.rate, "Or traffic as arrivals per second (Poisson)");
  app.add_option("--utterance-seconds", t.utterance_seconds,
                 "With --rate: mean seconds of audio per request");
  app.add_option("--ttfa-p99", t.ttfa_p99_s, "Service level: first audio p99, seconds")
      ->capture_default_str();
  app.add_option("--min-no-stall", t.min_no_stall,
                 "Service level: share of streams that play without a stall")
      ->capture_default_str();
  app.add_option("--headroom", t.headroom, "Spare capacity over the need (0.2: 20 %)")
      ->capture_default_str();
  app.add_option("--overflow", t.overflow,
                 "With --rate: the accepted chance that the need exceeds the fleet")
      ->capture_default_str();
  app.add_option("--cost-per-hour", t.cost_per_hour, "Price of one instance-hour (optional)");
  app.add_option("--json", o->json, "Write the plan as JSON");
  app.add_option("--chart", o->chart, "Write the fleet size against capacity as SVG");
  return [o] {
    if (!o->chart.empty() &&
        (o->chart.size() < 4 || o->chart.compare(o->chart.size() - 4, 4, ".svg") != 0)) {
      usage_fail("--chart ", o->chart, ": only SVG charts are written (name it .svg)");
    }
    return run_plan(*o);
  };
}

}  // namespace cosy::tools
