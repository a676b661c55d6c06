// The voices' prompt flow states (FlowStage::prompt_state: a voice's complete prompt chunks,
// which its incremental streams would otherwise compute again), kept for the most recent
// voices. A state not kept yet is computed on this cache's own worker thread, so the
// scheduler goes on serving every other stream meanwhile; the streams of that voice wait
// for it (their LM runs meanwhile). One computation at a time: each already spreads over
// the backend's thread pool.
//
// request() and take_finished() are for one thread (the scheduler); the worker hands each
// state back through the future request() returned.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/flow/flow_state.h"

namespace cosy {

struct VoicePrompt;

// A voice's prompt state that may still be computing; get() gives the state or throws
// what its computation threw.
using PendingPromptState = std::shared_future<std::shared_ptr<const FlowStreamState>>;

class PromptStateCache {
 public:
  using State = std::shared_ptr<const FlowStreamState>;
  using Clock = std::chrono::steady_clock;
  using Compute = std::function<State(const VoicePrompt& voice, bool half_state)>;
  // One computation as it finished, for the engine's stats and trace.
  struct Computed {
    Clock::time_point begin, end;
    int64_t requested_by = 0;  // the stream whose request started it
    std::string error;         // empty: computed
  };

  // Keeps up to `capacity` (>= 1) voices' states; `on_finished` runs on the worker after
  // each computation (the engine wakes its scheduler there).
  PromptStateCache(size_t capacity, Compute compute, std::function<void()> on_finished);
  ~PromptStateCache();  // waits for the computation in progress; queued ones fail
  PromptStateCache(const PromptStateCache&) = delete;
  PromptStateCache& operator=(const PromptStateCache&) = delete;

  // The voice's state (keyed by its flow_identity() and the state's precision): ready when
  // kept, else queued for the worker, once however many streams ask. A computation that
  // failed is tried again by the next request.
  PendingPromptState request(std::shared_ptr<const VoicePrompt> voice, bool half_state,
                             int64_t requested_by);
  // The computations finished since the last call.
  std::vector<Computed> take_finished();
  size_t bytes() const;  // of the states kept and computed
  size_t voices() const { return entries_.size(); }

 private:
  struct Entry {
    std::shared_ptr<const VoicePrompt> voice;  // keeps its flow_identity() alive
    bool half_state = false;
    PendingPromptState state;
  };
  struct Job {
    std::shared_ptr<const VoicePrompt> voice;
    bool half_state = false;
    int64_t requested_by = 0;
    std::promise<State> promise;
  };
  void work();
  void evict();

  const size_t capacity_;
  const Compute compute_;
  const std::function<void()> on_finished_;
  std::list<Entry> entries_;  // most recently requested first; the requesting thread's

  std::mutex mutex_;  // guards what follows, shared with the worker
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<Computed> finished_;
  bool stopping_ = false;
  std::thread worker_;  // last: starts once the rest is built
};

}  // namespace cosy
