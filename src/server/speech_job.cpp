#include "server/speech_job.h"

namespace cosy::server {

SpeechJob::SpeechJob(int64_t max_pending_samples, std::function<void()> notify)
    : max_pending_samples_(max_pending_samples),
      notify_(std::move(notify)),
      started_(std::chrono::steady_clock::now()) {}

AudioCallback SpeechJob::audio_callback() {
  std::weak_ptr<SpeechJob> weak = weak_from_this();
  return [weak](const AudioChunk& c) {
    const auto job = weak.lock();
    return job != nullptr && job->on_audio(c);
  };
}

std::function<void(const StreamResult&)> SpeechJob::completion_callback() {
  std::weak_ptr<SpeechJob> weak = weak_from_this();
  return [weak](const StreamResult& r) {
    if (const auto job = weak.lock()) job->on_complete(r);
  };
}

void SpeechJob::attach(std::shared_ptr<SynthesisStream> stream) {
  bool cancel_now = false;
  {
    std::lock_guard lock(mutex_);
    stream_ = std::move(stream);
    cancel_now = cancelled_;
  }
  if (cancel_now) stream_->cancel();
}

bool SpeechJob::on_audio(const AudioChunk& c) {
  {
    std::lock_guard lock(mutex_);
    if (cancelled_) return false;
    if (pending_samples_ + static_cast<int64_t>(c.samples.size()) > max_pending_samples_) {
      too_slow_ = true;
      cancelled_ = true;
    } else {
      if (!c.samples.empty() && first_audio_s_ < 0) {
        first_audio_s_ =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      }
      pending_.emplace_back(c.samples.begin(), c.samples.end());
      pending_samples_ += static_cast<int64_t>(c.samples.size());
      samples_ += static_cast<int64_t>(c.samples.size());
    }
  }
  notify_();
  std::lock_guard lock(mutex_);
  return !cancelled_;
}

void SpeechJob::on_complete(const StreamResult& result) {
  {
    std::lock_guard lock(mutex_);
    result_ = result;
  }
  notify_();
}

SpeechJob::Taken SpeechJob::take() {
  std::lock_guard lock(mutex_);
  Taken t;
  t.chunks.swap(pending_);
  pending_samples_ = 0;
  t.result = result_;
  t.too_slow = too_slow_;
  return t;
}

void SpeechJob::cancel() {
  std::shared_ptr<SynthesisStream> stream;
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    stream = stream_;
  }
  if (stream) stream->cancel();
}

double SpeechJob::seconds_to_first_audio() const {
  std::lock_guard lock(mutex_);
  return first_audio_s_;
}

int64_t SpeechJob::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

}  // namespace cosy::server
