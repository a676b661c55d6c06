// One synthesis request between the engine and a connection. The engine's scheduler thread
// hands audio to the job (the AudioCallback) and tells it the end (on_complete); the job
// keeps the chunks in a bounded queue and asks the connection, through `notify`, to come
// and take them on its own thread. So model code never waits on a socket, and a socket
// never runs model code. A reader too slow for its queue bound is cut off: the job cancels
// its stream (freeing its KV blocks and flow state at the engine's next step) and says so.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/synthesis_stream.h"

namespace cosy::server {

class SpeechJob : public std::enable_shared_from_this<SpeechJob> {
 public:
  // `max_pending_samples`: audio the connection may leave untaken before it is cut off.
  // `notify`: called on the engine's thread when there is something to take; it must only
  // post work elsewhere.
  SpeechJob(int64_t max_pending_samples, std::function<void()> notify);

  // For StreamOptions (they hold the job weakly: a job gone means the stream is cancelled).
  AudioCallback audio_callback();
  std::function<void(const StreamResult&)> completion_callback();
  void attach(std::shared_ptr<SynthesisStream> stream);

  struct Taken {
    std::vector<std::vector<float>> chunks;
    std::optional<StreamResult> result;  // set once the stream has ended and every chunk is taken
    bool too_slow = false;               // the queue bound was hit: the stream was cancelled
  };
  Taken take();
  void cancel();  // idempotent; the client went away or the server drains

  double seconds_to_first_audio() const;  // -1 before any audio
  int64_t samples() const;

 private:
  bool on_audio(const AudioChunk& chunk);
  void on_complete(const StreamResult& result);

  const int64_t max_pending_samples_;
  const std::function<void()> notify_;
  const std::chrono::steady_clock::time_point started_;

  mutable std::mutex mutex_;
  std::shared_ptr<SynthesisStream> stream_;
  std::vector<std::vector<float>> pending_;
  int64_t pending_samples_ = 0;
  int64_t samples_ = 0;
  double first_audio_s_ = -1;
  std::optional<StreamResult> result_;
  bool too_slow_ = false;
  bool cancelled_ = false;
};

}  // namespace cosy::server
