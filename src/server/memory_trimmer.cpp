#include "server/memory_trimmer.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cosy::server {

MemoryTrimmer::MemoryTrimmer(double interval_seconds) {
  if (!(interval_seconds > 0)) return;
  const auto interval = std::chrono::duration<double>(interval_seconds);
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      trim();
      lock.lock();
    }
  });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool MemoryTrimmer::trim() {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

}  // namespace cosy::server
