// A Chrome trace-event JSON file (what Perfetto and chrome://tracing open), written as the
// events come: the engine's stages, each stream, and whatever a tool adds. Tracks are
// (process, thread) pairs by the format's convention; the engine's are below. Thread-safe.
// Tracing that is off is a null pointer: the engine tests it once per batched call.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/sync_points.h"

namespace cosy {

namespace trace_tracks {
// Process ids.
inline constexpr int kEngine = 1;   // threads: the stages and the scheduler
inline constexpr int kStreams = 2;  // one thread per stream, by its serial number
inline constexpr int kClients = 3;  // a load test's requests, as its clients see them
// The engine's threads.
inline constexpr int64_t kLlm = 1, kFlow = 2, kVocoder = 3, kScheduler = 4;
inline constexpr int64_t kVoicePrompts = 5;  // the flow's prompt states, beside its calls
}  // namespace trace_tracks

class TraceWriter : public SyncListener {
 public:
  using Clock = std::chrono::steady_clock;
  // Fails with a clear message when the file cannot be written.
  explicit TraceWriter(const std::filesystem::path& file);
  ~TraceWriter() override;  // closes the file (and stops listening for sync points)
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Names a track (written once per track).
  void name_track(int pid, int64_t tid, std::string_view process, std::string_view thread);
  // A span ("X") and an instant ("i") on a track; args: a JSON object, or null.
  void span(int pid, int64_t tid, std::string_view name, Clock::time_point begin,
            Clock::time_point end, const nlohmann::json& args = nullptr);
  void instant(int pid, int64_t tid, std::string_view name, Clock::time_point at,
               const nlohmann::json& args = nullptr);
  // A counter track ("C") of the engine process.
  void counter(std::string_view name, Clock::time_point at, const nlohmann::json& values);

  // Sync points land on the track the calling thread names here (the scheduler sets its
  // stage's before each call); threads that set none are not marked.
  static void set_thread_track(int pid, int64_t tid);
  void on_sync(Clock::time_point begin, Clock::time_point end) override;

  // Becomes the process's sync listener (the last writer made gets the sync points).
  void listen_for_sync_points();
  void close();

 private:
  void write(const nlohmann::json& event);  // under mutex_
  double micros(Clock::time_point t) const;

  std::mutex mutex_;
  std::ofstream out_;
  std::filesystem::path file_;
  const Clock::time_point origin_;
  bool first_ = true;
  bool closed_ = false;
  bool listening_ = false;
  std::set<std::pair<int, int64_t>> named_;
};

}  // namespace cosy
