#include "server/recent_activity.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace cosy::server {

int64_t RecentActivity::second_of(Clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::seconds>(t - start_).count();
}

void RecentActivity::forget_before(Clock::time_point now) {
  const auto horizon = now - std::chrono::seconds(kWindowSeconds);
  while (!first_audios_.empty() && first_audios_.front().at < horizon) first_audios_.pop_front();
}

void RecentActivity::first_audio(double ttfa_s, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  forget_before(now);
  if (first_audios_.size() >= kMaxFirstAudios) first_audios_.pop_front();
  first_audios_.push_back({now, ttfa_s});
}

void RecentActivity::audio(double seconds, Clock::time_point now) {
  const int64_t s = second_of(now);
  std::lock_guard lock(mutex_);
  Second& slot = seconds_[static_cast<size_t>(s) % seconds_.size()];
  if (slot.index != s) slot = {s, 0};
  slot.audio_s += seconds;
}

RecentActivity::Summary RecentActivity::summary(Clock::time_point now) const {
  Summary out;
  const double since_start = std::chrono::duration<double>(now - start_).count();
  out.window_s = std::min<double>(kWindowSeconds, since_start);
  const int64_t current = second_of(now);
  std::vector<double> ttfa;
  {
    std::lock_guard lock(mutex_);
    // The current second counts in part; the oldest one counts for what of it is still in
    // the window, so xRT does not jump as whole seconds age out.
    const double current_fraction = since_start - double(current);
    for (const Second& slot : seconds_) {
      const int64_t age = current - slot.index;
      if (slot.index < 0 || age < 0 || age > kWindowSeconds) continue;
      double weight = 1;
      if (age == kWindowSeconds) weight = 1 - current_fraction;
      out.audio_s += weight * slot.audio_s;
    }
    const auto horizon = now - std::chrono::seconds(kWindowSeconds);
    for (const FirstAudio& f : first_audios_) {
      if (f.at >= horizon) ttfa.push_back(f.ttfa_s);
    }
  }
  out.xrt = out.window_s > 0 ? out.audio_s / out.window_s : 0;
  out.first_audios = static_cast<int64_t>(ttfa.size());
  if (!ttfa.empty()) {
    std::sort(ttfa.begin(), ttfa.end());
    const auto rank = [&](double p) {
      const auto k = static_cast<size_t>(std::ceil(p * double(ttfa.size())));
      return ttfa[std::clamp<size_t>(k, 1, ttfa.size()) - 1];
    };
    out.ttfa_p50_s = rank(0.50);
    out.ttfa_p99_s = rank(0.99);
  }
  return out;
}

}  // namespace cosy::server
