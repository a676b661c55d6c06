// The server's Prometheus metrics: counters, gauges and histograms with labels, rendered in
// the text exposition format (version 0.0.4) for GET /metrics. Names start with cosyserve_
// and follow vLLM's meaning where one exists (streams running/waiting, time to first
// audio). Thread-safe: network threads and the engine's completion callbacks update them.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cosy::server {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  void add_counter(const std::string& name, const std::string& help);
  void add_gauge(const std::string& name, const std::string& help);
  void add_histogram(const std::string& name, const std::string& help, std::vector<double> bounds);

  void increment(const std::string& name, const Labels& labels = {}, double by = 1);
  void set(const std::string& name, double value, const Labels& labels = {});
  void observe(const std::string& name, double value, const Labels& labels = {});

  std::string render() const;

 private:
  enum class Kind { Counter, Gauge, Histogram };
  struct Series {
    double value = 0;               // counter, gauge
    std::vector<uint64_t> buckets;  // histogram: cumulative at render
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Kind kind = Kind::Counter;
    std::string help;
    std::vector<double> bounds;
    std::map<Labels, Series> series;
  };
  Family& family(const std::string& name, Kind kind);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

}  // namespace cosy::server
