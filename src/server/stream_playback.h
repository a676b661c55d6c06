// What a listener with no jitter buffer hears of a stream the server sends: each chunk's
// hand-off to the client is an arrival; at the end, runtime/playback.h's listener model (the
// one `cosyserve loadtest` uses) says how often and how long playback would have stopped.
// Seen from the server, so the network's own delay is not in it.
#pragma once

#include <vector>

#include "runtime/playback.h"
#include "server/net_common.h"

namespace cosy::server {

class StreamPlayback {
 public:
  explicit StreamPlayback(Clock::time_point start = Clock::now()) : start_(start) {}
  void sent(double audio_s) {
    if (audio_s > 0) arrivals_.push_back({seconds_since(start_), audio_s});
  }
  Playback finish() const { return listen(arrivals_, /*buffer_s=*/0, seconds_since(start_)); }

 private:
  Clock::time_point start_;
  std::vector<Arrival> arrivals_;
};

}  // namespace cosy::server
