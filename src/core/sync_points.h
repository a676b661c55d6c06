// Where the host waits for a backend. Every backend's Stream::synchronize reports its wait
// here, so that a trace can mark the points: on the CPU the wait is empty (work ran as it
// was queued); on a device it is where the host stalls. One listener per process, off (one
// relaxed atomic load per synchronize) unless a trace is being written.
#pragma once

#include <chrono>

namespace cosy {

class SyncListener {
 public:
  virtual ~SyncListener() = default;
  virtual void on_sync(std::chrono::steady_clock::time_point begin,
                       std::chrono::steady_clock::time_point end) = 0;
};

// null: off. The listener must outlive every synchronize that may see it.
void set_sync_listener(SyncListener* listener);
SyncListener* sync_listener();

// For backends: reports a wait that began at `begin` and ends now.
inline void report_sync(std::chrono::steady_clock::time_point begin) {
  if (SyncListener* l = sync_listener()) l->on_sync(begin, std::chrono::steady_clock::now());
}

}  // namespace cosy
