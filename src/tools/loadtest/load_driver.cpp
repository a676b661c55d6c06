#include "tools/loadtest/load_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"

namespace cosy::loadtest {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

StageStats minus(const StageStats& a, const StageStats& b) {
  StageStats d;
  d.seconds = a.seconds - b.seconds;
  d.flops = a.flops - b.flops;
  d.calls = a.calls - b.calls;
  d.items = a.items - b.items;
  d.batch_sizes = a.batch_sizes;
  for (size_t i = 0; i < b.batch_sizes.size() && i < d.batch_sizes.size(); ++i)
    d.batch_sizes[i] -= b.batch_sizes[i];
  return d;
}

EngineStats minus(const EngineStats& a, const EngineStats& b) {
  EngineStats d = a;
  d.llm = minus(a.llm, b.llm);
  d.flow = minus(a.flow, b.flow);
  d.hift = minus(a.hift, b.hift);
  d.lm_evictions = a.lm_evictions - b.lm_evictions;
  return d;
}

// What one level shares between its threads.
struct LevelState {
  std::mutex mutex;
  std::vector<StreamRecord> records;
  std::optional<Clock::time_point> window_from, window_to;
  std::optional<EngineStats> stats_from, stats_to;
  std::atomic<int64_t> running{0};
  std::atomic<int64_t> done{0};
  std::atomic<double> audio_s{0};
};

// Runs one request on this thread and files its record with the level.
void run_request(LoadTarget& target, const LoadDriver::OnRecord& on_record,
                 const std::atomic<bool>& stop, LevelState& st, Clock::time_point level_start,
                 const LoadRequest& req, Clock::time_point sent) {
  StreamRecord rec = target.run(req, sent, stop);
  if (on_record) on_record(rec, sent);
  --st.running;
  rec.sent_s = seconds_between(level_start, sent);
  double audio = 0;
  for (const Arrival& a : rec.arrivals) audio += a.audio_s;
  st.audio_s += audio;
  ++st.done;
  std::lock_guard lock(st.mutex);
  st.records.push_back(std::move(rec));
}

}  // namespace

std::string LengthModel::describe() const {
  if (tokens_per_text_token <= 0) return "the model's own (random weights run to their limit)";
  char buf[160];
  std::snprintf(buf, sizeof buf, "forced: %.2f ± %.2f speech tokens per text token",
                tokens_per_text_token, sd);
  return buf;
}

LoadDriver::LoadDriver(LoadTarget& target, std::vector<std::string> texts, WorkloadOptions workload,
                       Progress progress)
    : target_(target),
      texts_(std::move(texts)),
      workload_(std::move(workload)),
      progress_(std::move(progress)) {
  if (texts_.empty()) fail("loadtest: no texts");
}

LoadRequest LoadDriver::request(int64_t k) const {
  std::mt19937_64 rng(workload_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(k));
  LoadRequest r;
  r.id = k;
  r.text = texts_[std::uniform_int_distribution<size_t>(0, texts_.size() - 1)(rng)];
  r.seed = rng() >> 33;  // within the API's non-negative integers
  r.text_rate = workload_.text_rate;
  const LengthModel& m = workload_.length;
  if (m.tokens_per_text_token > 0) {
    const double draw = m.sd > 0
                            ? std::normal_distribution<double>(m.tokens_per_text_token, m.sd)(rng)
                            : m.tokens_per_text_token;
    r.tokens_per_text_token =
        std::clamp(draw, m.tokens_per_text_token / 4, m.tokens_per_text_token * 4);
  }
  return r;
}

LevelReport LoadDriver::run(const LevelPlan& plan) {
  if (plan.requests <= 0 && plan.duration_s <= 0)
    fail("loadtest: a level needs a request count or a duration");
  return plan.rate > 0 ? run_open(plan) : run_closed(plan);
}

LevelReport LoadDriver::run_closed(const LevelPlan& plan) {
  if (plan.concurrency < 1) fail("loadtest: concurrency must be >= 1");
  LevelState st;
  const Clock::time_point start = Clock::now();
  std::atomic<int64_t> next{0};
  const int64_t warmup = plan.warmup_requests;
  const int64_t total = plan.requests > 0 ? warmup + plan.requests : INT64_MAX;

  auto close_window = [&] {
    std::lock_guard lock(st.mutex);
    if (st.window_to || !st.window_from) return;
    st.window_to = Clock::now();
    st.stats_to = target_.engine_stats();
  };
  auto worker = [&] {
    for (;;) {
      if (stop_) return;
      if (plan.duration_s > 0) {
        std::lock_guard lock(st.mutex);
        if (st.window_from && Clock::now() >= *st.window_from + seconds(plan.duration_s)) {
          if (!st.window_to) {
            st.window_to = *st.window_from + seconds(plan.duration_s);
            st.stats_to = target_.engine_stats();
          }
          return;
        }
      }
      const int64_t k = next++;
      if (k >= total) {
        close_window();  // the load starts to fall here
        return;
      }
      const LoadRequest req = request(k);
      const Clock::time_point sent = Clock::now();
      if (k == warmup) {
        std::lock_guard lock(st.mutex);
        st.window_from = sent;
        st.stats_from = target_.engine_stats();
      }
      ++st.running;
      run_request(target_, on_record_, stop_, st, start, req, sent);
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(plan.concurrency));
  for (int64_t i = 0; i < plan.concurrency; ++i) threads.emplace_back(worker);
  std::atomic<bool> reporting{true};
  std::thread reporter([&] {
    while (reporting) {
      if (progress_) {
        char line[200];
        std::snprintf(line, sizeof line,
                      "c=%lld: %lld done (%lld warm-up), %lld running, %.1f s of audio in %.0f s",
                      static_cast<long long>(plan.concurrency), static_cast<long long>(st.done),
                      static_cast<long long>(warmup), static_cast<long long>(st.running.load()),
                      st.audio_s.load(), seconds_from(start));
        progress_(line);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  for (auto& t : threads) t.join();
  reporting = false;
  reporter.join();
  close_window();
  if (!st.window_from) fail("loadtest: the level ended during its warm-up");
  LevelReport r = summarize("closed", plan.concurrency, 0, st.records, warmup,
                            seconds_between(start, *st.window_from),
                            seconds_between(start, *st.window_to), workload_.buffer_s);
  if (st.stats_from && st.stats_to) r.stages = minus(*st.stats_to, *st.stats_from);
  return r;
}

LevelReport LoadDriver::run_open(const LevelPlan& plan) {
  LevelState st;
  const Clock::time_point start = Clock::now();
  std::mt19937_64 rng(workload_.seed ^ 0xA5A5A5A5ULL);
  std::exponential_distribution<double> gap(plan.rate);
  const int64_t warmup = plan.warmup_requests;
  const int64_t total = plan.requests > 0 ? warmup + plan.requests : INT64_MAX;
  // Each arrival's thread, and whether it has finished (finished ones are joined as the
  // level goes, so a long run does not keep thousands of them).
  std::list<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> threads;
  auto reap = [&] {
    for (auto it = threads.begin(); it != threads.end();) {
      if (it->second->load()) {
        it->first.join();
        it = threads.erase(it);
      } else {
        ++it;
      }
    }
  };
  double t = 0;
  int64_t peak_running = 0;
  for (int64_t k = 0; k < total && !stop_; ++k) {
    if (k > 0) t += gap(rng);
    const Clock::time_point due = start + seconds(t);
    if (plan.duration_s > 0 && st.window_from &&
        due >= *st.window_from + seconds(plan.duration_s)) {
      break;
    }
    reap();
    while (Clock::now() < due && !stop_) {
      std::this_thread::sleep_until(std::min(due, Clock::now() + std::chrono::milliseconds(250)));
      if (progress_) {
        char line[200];
        std::snprintf(line, sizeof line,
                      "rate %.2f/s: %lld sent (%lld warm-up), %lld done, %lld running, %.1f s of "
                      "audio in %.0f s",
                      plan.rate, static_cast<long long>(k), static_cast<long long>(warmup),
                      static_cast<long long>(st.done), static_cast<long long>(st.running.load()),
                      st.audio_s.load(), seconds_from(start));
        progress_(line);
      }
    }
    const Clock::time_point sent = Clock::now();
    if (k == warmup) {
      std::lock_guard lock(st.mutex);
      st.window_from = sent;
      st.stats_from = target_.engine_stats();
    }
    if (st.running >= plan.max_in_flight) {
      StreamRecord rec;
      rec.id = k;
      rec.sent_s = seconds_between(start, sent);
      rec.error = cat("the load generator's limit of ", plan.max_in_flight,
                      " requests in flight was reached");
      std::lock_guard lock(st.mutex);
      st.records.push_back(std::move(rec));
      continue;
    }
    ++st.running;
    peak_running = std::max(peak_running, st.running.load());
    auto finished = std::make_shared<std::atomic<bool>>(false);
    std::thread th([this, &st, start, sent, finished, req = request(k)] {
      run_request(target_, on_record_, stop_, st, start, req, sent);
      *finished = true;
    });
    threads.emplace_back(std::move(th), std::move(finished));
  }
  // The window ends with the arrivals; the streams in flight then finish for their figures.
  {
    std::lock_guard lock(st.mutex);
    st.window_to = Clock::now();
    st.stats_to = target_.engine_stats();
  }
  for (auto& th : threads) th.first.join();
  if (!st.window_from) fail("loadtest: the level ended during its warm-up");
  LevelReport r = summarize("open", peak_running, plan.rate, st.records, warmup,
                            seconds_between(start, *st.window_from),
                            seconds_between(start, *st.window_to), workload_.buffer_s);
  if (st.stats_from && st.stats_to) r.stages = minus(*st.stats_to, *st.stats_from);
  return r;
}

}  // namespace cosy::loadtest
