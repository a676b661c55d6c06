// What the server did over the last minute, for GET /load (a balancer's or the playground's
// view): the time to first audio of the streams that started, and the audio produced per
// wall second (xRT). Thread-safe: network threads record, any thread reads.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>

#include "server/net_common.h"

namespace cosy::server {

class RecentActivity {
 public:
  static constexpr int kWindowSeconds = 60;

  explicit RecentActivity(Clock::time_point start = Clock::now()) : start_(start) {}

  // A stream's first audio, `ttfa_s` after its request arrived.
  void first_audio(double ttfa_s, Clock::time_point now = Clock::now());
  // `seconds` of audio handed to a client.
  void audio(double seconds, Clock::time_point now = Clock::now());

  struct Summary {
    double window_s = 0;       // the span covered: the last minute, or since start if shorter
    int64_t first_audios = 0;  // streams whose first audio fell in it
    double ttfa_p50_s = -1;    // nearest-rank percentiles; -1 with no stream
    double ttfa_p99_s = -1;
    double audio_s = 0;  // audio produced in it
    double xrt = 0;      // audio_s / window_s
  };
  Summary summary(Clock::time_point now = Clock::now()) const;

 private:
  struct Second {
    int64_t index = -1;  // whole seconds since start_; -1: unused
    double audio_s = 0;
  };
  struct FirstAudio {
    Clock::time_point at;
    double ttfa_s;
  };
  int64_t second_of(Clock::time_point t) const;
  void forget_before(Clock::time_point now);  // under mutex_

  // Audio per second, in a ring over the window: bounded whatever the rate.
  const Clock::time_point start_;
  mutable std::mutex mutex_;
  std::array<Second, kWindowSeconds + 1> seconds_{};
  // One entry per stream, dropped as they age out; capped so that a flood cannot grow it.
  static constexpr size_t kMaxFirstAudios = 100000;
  std::deque<FirstAudio> first_audios_;
};

}  // namespace cosy::server
