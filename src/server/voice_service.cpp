#include "server/voice_service.h"

#include <cstdio>

#include "core/error.h"
#include "model/voices.h"
#include "text/bpe_tokenizer.h"

namespace cosy::server {

VoiceService::VoiceService(Engine& engine, const ModelFolder& folder, std::filesystem::path store,
                           int64_t max_queue)
    : engine_(engine), store_(std::move(store)), max_queue_(max_queue) {
  try {
    // The engine's text frontend (immutable, shared): the transcripts' tokenizer.
    if (engine_.frontend() == nullptr) {
      unavailable_ = "the model folder has no tokenizer";
    } else {
      maker_ = std::make_unique<VoiceMaker>(folder.dir, folder.config, *engine_.frontend());
    }
  } catch (const Error& e) {
    unavailable_ = e.what();
  }
  if (std::filesystem::exists(store_)) {
    bank_ = load_voices(store_, folder.config);
    for (const Voice& v : bank_.voices) {
      try {
        engine_.set_voice(v.id, std::make_shared<VoicePrompt>(VoicePrompt::from_voice(v)));
      } catch (const Error& e) {
        std::fprintf(stderr, "voice '%s' in %s cannot be used: %s\n", v.id.c_str(), store_.c_str(),
                     e.what());
      }
    }
  }
  worker_ = std::thread([this] { worker_loop(); });
}

VoiceService::~VoiceService() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
    queue_.clear();
  }
  queue_cv_.notify_all();
  worker_.join();
}

bool VoiceService::submit(std::function<void()> work) {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) >= max_queue_) return false;
    queue_.push_back(std::move(work));
  }
  queue_cv_.notify_one();
  return true;
}

void VoiceService::worker_loop() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();  // jobs catch their own errors and post them back
  }
}

std::shared_ptr<const VoicePrompt> VoiceService::make_one_off(const std::string& audio,
                                                              const std::string& ref_text) const {
  if (!maker_) fail("this server cannot make voices from recordings: ", unavailable_);
  auto prompt = std::make_shared<VoicePrompt>(
      maker_->one_off(std::as_bytes(std::span(audio.data(), audio.size())), "ref_audio", ref_text));
  engine_.check_voice(*prompt);
  return prompt;
}

Voice VoiceService::make_voice(const std::string& name, const std::string& audio,
                               const std::string& ref_text) const {
  if (!maker_) fail("this server cannot make voices from recordings: ", unavailable_);
  return maker_->make(name, std::as_bytes(std::span(audio.data(), audio.size())), "audio_sample",
                      ref_text);
}

void VoiceService::store_voice(const Voice& voice) {
  auto prompt = std::make_shared<VoicePrompt>(VoicePrompt::from_voice(voice));
  engine_.check_voice(*prompt);
  std::lock_guard lock(store_mutex_);
  VoiceBank next = bank_;
  std::erase_if(next.voices, [&](const Voice& v) { return v.id == voice.id; });
  next.voices.push_back(voice);
  save_voices(store_, next);  // the file first: a voice the engine has is a voice on disk
  bank_ = std::move(next);
  engine_.set_voice(voice.id, std::move(prompt));
}

bool VoiceService::delete_voice(const std::string& name) {
  std::lock_guard lock(store_mutex_);
  if (bank_.find(name) == nullptr) return false;
  VoiceBank next = bank_;
  std::erase_if(next.voices, [&](const Voice& v) { return v.id == name; });
  save_voices(store_, next);
  bank_ = std::move(next);
  engine_.remove_voice(name);
  return true;
}

bool VoiceService::is_stored(const std::string& name) const {
  std::lock_guard lock(store_mutex_);
  return bank_.find(name) != nullptr;
}

}  // namespace cosy::server
