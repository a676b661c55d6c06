// Runs load levels against a target: closed loop (a fixed number of streams, each next
// request sent as the previous one ends) or open loop (Poisson arrivals at a rate). The
// k-th request of a level has the same text, seed and length whatever the timing, so two
// runs with the same seed see the same workload.
#pragma once

#include <atomic>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tools/loadtest/load_report.h"
#include "tools/loadtest/load_target.h"

namespace cosy::loadtest {

struct LengthModel {
  // > 0: speech tokens per text token, drawn per request from a normal distribution with
  // this mean and `sd` (clipped to [mean / 4, 4 × mean]); 0: the model decides.
  double tokens_per_text_token = 0;
  double sd = 0;
  std::string describe() const;
};

struct LevelPlan {
  int64_t concurrency = 0;       // closed loop
  double rate = 0;               // open loop (when > 0)
  int64_t requests = 0;          // measured requests; or
  double duration_s = 0;         // the measurement window's length
  int64_t warmup_requests = 0;   // the first requests, not measured
  int64_t max_in_flight = 1024;  // open loop: arrivals beyond this fail in the generator
};

struct WorkloadOptions {
  uint64_t seed = 1;
  LengthModel length;
  double text_rate = 0;  // pieces per second; 0: whole text
  double buffer_s = 0;   // the listener's jitter buffer
};

class LoadDriver {
 public:
  using Progress = std::function<void(const std::string&)>;
  // Called on the request's thread as each request ends (a trace's client track).
  using OnRecord = std::function<void(const StreamRecord&, Clock::time_point sent)>;
  void on_record(OnRecord fn) { on_record_ = std::move(fn); }
  LoadDriver(LoadTarget& target, std::vector<std::string> texts, WorkloadOptions workload,
             Progress progress = {});
  // The k-th request of every level.
  LoadRequest request(int64_t k) const;
  LevelReport run(const LevelPlan& plan);
  // Ends the running level early (requests in flight are told to stop): Ctrl-C.
  void stop() { stop_ = true; }
  bool stopped() const { return stop_.load(); }

 private:
  LevelReport run_closed(const LevelPlan& plan);
  LevelReport run_open(const LevelPlan& plan);

  LoadTarget& target_;
  std::vector<std::string> texts_;
  WorkloadOptions workload_;
  Progress progress_;
  OnRecord on_record_;
  std::atomic<bool> stop_{false};
};

}  // namespace cosy::loadtest
