#include "runtime/prompt_state_cache.h"

#include <algorithm>

#include "core/error.h"
#include "runtime/voice_prompt.h"

namespace cosy {

namespace {
bool is_ready(const PendingPromptState& s) {
  return s.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
bool failed(const PendingPromptState& s) {
  if (!is_ready(s)) return false;
  try {
    s.get();
    return false;
  } catch (...) {
    return true;
  }
}
}  // namespace

PromptStateCache::PromptStateCache(size_t capacity, Compute compute,
                                   std::function<void()> on_finished)
    : capacity_(capacity), compute_(std::move(compute)), on_finished_(std::move(on_finished)) {
  if (capacity_ == 0) fail("prompt state cache: capacity must be >= 1");
  if (!compute_) fail("prompt state cache: no computation given");
  worker_ = std::thread([this] { work(); });
}

PromptStateCache::~PromptStateCache() {
  std::deque<Job> left;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  worker_.join();
  for (Job& job : left) {
    job.promise.set_exception(
        std::make_exception_ptr(Error("the voice's prompt state was not computed: shutting down")));
  }
}

PendingPromptState PromptStateCache::request(std::shared_ptr<const VoicePrompt> voice,
                                             bool half_state, int64_t requested_by) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.voice->flow_identity() == voice->flow_identity() && e.half_state == half_state;
  });
  if (it != entries_.end() && failed(it->state)) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it != entries_.end()) {
    entries_.splice(entries_.begin(), entries_, it);
  } else {
    Job job{voice, half_state, requested_by, {}};
    entries_.push_front({std::move(voice), half_state, job.promise.get_future().share()});
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  PendingPromptState state = entries_.front().state;
  evict();
  return state;
}

// Drops the least recently requested states beyond the capacity; a state still computing
// stays (its streams wait for it), so the cache may hold more until it is done.
void PromptStateCache::evict() {
  for (auto it = entries_.end(); entries_.size() > capacity_ && it != entries_.begin();) {
    --it;
    if (is_ready(it->state)) it = entries_.erase(it);
  }
}

std::vector<PromptStateCache::Computed> PromptStateCache::take_finished() {
  std::lock_guard lock(mutex_);
  std::vector<Computed> out;
  out.swap(finished_);
  return out;
}

size_t PromptStateCache::bytes() const {
  size_t b = 0;
  for (const Entry& e : entries_) {
    if (!is_ready(e.state) || failed(e.state)) continue;
    const State& s = e.state.get();
    if (s) b += s->shared_bytes() + s->bytes();
  }
  return b;
}

void PromptStateCache::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Computed done;
    done.requested_by = job.requested_by;
    done.begin = Clock::now();
    try {
      job.promise.set_value(compute_(*job.voice, job.half_state));
    } catch (const std::exception& ex) {
      done.error = ex.what();
      job.promise.set_exception(std::current_exception());
    } catch (...) {
      done.error = "an unknown error";
      job.promise.set_exception(std::current_exception());
    }
    done.end = Clock::now();
    {
      std::lock_guard lock(mutex_);
      finished_.push_back(std::move(done));
    }
    if (on_finished_) on_finished_();
  }
}

}  // namespace cosy
