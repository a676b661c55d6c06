// Voices for the server: one-off voices from a request's recording (ref_audio), and the
// registry behind /v1/audio/voices, persisted in the official spk2info.pt format.
//
// Making a voice runs the frontend's models, so it never runs on a network thread: jobs go
// to the service's own worker thread through a bounded queue, and post their result back
// to the connection. Registered voices are written to the store and handed to the engine
// at once; the store's voices are loaded into the engine at start, so they survive restarts.
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/model_folder.h"
#include "runtime/engine.h"
#include "runtime/voice_maker.h"

namespace cosy::server {

class VoiceService {
 public:
  // `store`: the registry's file (spk2info.pt format). `max_queue`: voice jobs that may
  // wait for the worker; beyond it submit() refuses.
  VoiceService(Engine& engine, const ModelFolder& folder, std::filesystem::path store,
               int64_t max_queue);
  ~VoiceService();
  VoiceService(const VoiceService&) = delete;
  VoiceService& operator=(const VoiceService&) = delete;

  // "" when voices can be made from recordings, else why not (no frontend models, no
  // tokenizer), for a clear 400.
  const std::string& unavailable() const { return unavailable_; }
  const std::filesystem::path& store() const { return store_; }

  // Queues `work` for the voice worker; false when the queue is full.
  bool submit(std::function<void()> work);

  // On the worker: the frontend on a recording's bytes. Errors say what is wrong with it.
  std::shared_ptr<const VoicePrompt> make_one_off(const std::string& audio,
                                                  const std::string& ref_text) const;
  Voice make_voice(const std::string& name, const std::string& audio,
                   const std::string& ref_text) const;

  // The registry (any thread). store_voice adds or replaces; delete_voice is false when
  // the registry has no such voice (the folder's own voices are read-only here).
  void store_voice(const Voice& voice);
  bool delete_voice(const std::string& name);
  bool is_stored(const std::string& name) const;

 private:
  void worker_loop();

  Engine& engine_;
  std::filesystem::path store_;
  int64_t max_queue_;
  std::string unavailable_;
  std::unique_ptr<VoiceMaker> maker_;

  mutable std::mutex store_mutex_;
  VoiceBank bank_;  // the store's voices

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace cosy::server
