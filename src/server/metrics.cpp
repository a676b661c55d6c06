#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace cosy::server {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string label_text(const Labels& labels, const std::string& extra_key = "",
                       const std::string& extra_value = "") {
  std::string s;
  for (const auto& [k, v] : labels)
    s += (s.empty() ? "" : ",") + k + "=\"" + escape_label(v) + "\"";
  if (!extra_key.empty()) s += (s.empty() ? "" : ",") + extra_key + "=\"" + extra_value + "\"";
  return s.empty() ? "" : "{" + s + "}";
}

// The shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

Metrics::Family& Metrics::family(const std::string& name, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.kind != kind) fail("metrics: no such metric ", name);
  return it->second;
}

void Metrics::add_counter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  families_[name] = Family{Kind::Counter, help, {}, {}};
}

void Metrics::add_gauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  families_[name] = Family{Kind::Gauge, help, {}, {}};
}

void Metrics::add_histogram(const std::string& name, const std::string& help,
                            std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mutex_);
  families_[name] = Family{Kind::Histogram, help, std::move(bounds), {}};
}

void Metrics::increment(const std::string& name, const Labels& labels, double by) {
  std::lock_guard lock(mutex_);
  family(name, Kind::Counter).series[labels].value += by;
}

void Metrics::set(const std::string& name, double value, const Labels& labels) {
  std::lock_guard lock(mutex_);
  family(name, Kind::Gauge).series[labels].value = value;
}

void Metrics::observe(const std::string& name, double value, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, Kind::Histogram);
  Series& s = f.series[labels];
  if (s.buckets.empty()) s.buckets.assign(f.bounds.size(), 0);
  for (size_t i = 0; i < f.bounds.size(); ++i) {
    if (value <= f.bounds[i]) ++s.buckets[i];
  }
  s.sum += value;
  ++s.count;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& family : families_) {
    const std::string& name = family.first;  // (clang 14 cannot capture a structured binding)
    const Family& f = family.second;
    const char* type = f.kind == Kind::Counter ? "counter"
                       : f.kind == Kind::Gauge ? "gauge"
                                               : "histogram";
    out << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << type << "\n";
    if (f.kind != Kind::Histogram) {
      // A family with no series yet still shows its zero (an unlabelled one).
      if (f.series.empty()) out << name << " 0\n";
      for (const auto& [labels, s] : f.series)
        out << name << label_text(labels) << " " << number(s.value) << "\n";
      continue;
    }
    auto render_series = [&](const Labels& labels, const Series& s) {
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        const uint64_t n = s.buckets.empty() ? 0 : s.buckets[i];
        out << name << "_bucket" << label_text(labels, "le", number(f.bounds[i])) << " " << n
            << "\n";
      }
      out << name << "_bucket" << label_text(labels, "le", "+Inf") << " " << s.count << "\n";
      out << name << "_sum" << label_text(labels) << " " << number(s.sum) << "\n";
      out << name << "_count" << label_text(labels) << " " << s.count << "\n";
    };
    if (f.series.empty()) render_series({}, Series{});
    for (const auto& [labels, s] : f.series) render_series(labels, s);
  }
  return out.str();
}

}  // namespace cosy::server
