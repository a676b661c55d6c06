#include "runtime/synthesis_stream.h"

#include "core/error.h"
#include "text/text_frontend.h"

namespace cosy {

const char* stream_input_name(StreamInput k) {
  switch (k) {
    case StreamInput::Text:
      return "text";
    case StreamInput::IncrementalText:
      return "incremental";
    case StreamInput::SpeechTokens:
      return "tokens";
  }
  return "?";
}

StreamInput parse_stream_input(const std::string& s) {
  for (StreamInput k :
       {StreamInput::Text, StreamInput::IncrementalText, StreamInput::SpeechTokens}) {
    if (s == stream_input_name(k)) return k;
  }
  fail("unknown stream input '", s, "' (text, incremental or tokens)");
}

const char* stream_status_name(StreamStatus s) {
  switch (s) {
    case StreamStatus::Running:
      return "running";
    case StreamStatus::Done:
      return "done";
    case StreamStatus::Cancelled:
      return "cancelled";
    case StreamStatus::Failed:
      return "failed";
  }
  return "?";
}

void StreamOptions::validate() const {
  if (voice == nullptr) fail("stream: no voice");
  flow.validate();
  sampling.validate();
  guard.validate();
  beams.validate();
  if (fixed_tokens < 0) fail("stream: fixed_tokens must be >= 0");
  if (!(forced_tokens_per_text_token >= 0) || forced_tokens_per_text_token > 1000)
    fail("stream: forced_tokens_per_text_token must be in [0, 1000], got ",
         forced_tokens_per_text_token);
  if (!(speed >= 0.5 && speed <= 2.0))
    fail("stream: speed must be between 0.5 and 2.0, got ", speed);
  if (!(min_token_text_ratio >= 0) || !(max_token_text_ratio > 0) ||
      min_token_text_ratio > max_token_text_ratio) {
    fail("stream: token/text ratios must satisfy 0 <= min <= max, max > 0");
  }
}

void SchedulerSignal::notify() {
  {
    std::lock_guard lock(mutex);
    ++generation;
  }
  cv.notify_all();
}

SynthesisStream::SynthesisStream(StreamOptions options, AudioCallback callback,
                                 const LmSessionLimits& limits, const text::TextFrontend* frontend,
                                 int64_t max_input_chars, std::shared_ptr<SchedulerSignal> signal)
    : options_(std::move(options)),
      callback_(std::move(callback)),
      limits_(limits),
      frontend_(frontend),
      max_input_chars_(max_input_chars),
      signal_(std::move(signal)),
      opened_(std::chrono::steady_clock::now()) {}

void SynthesisStream::check_open(const char* what, StreamInput kind) const {
  if (options_.input != kind) {
    fail(what, ": this stream takes ", stream_input_name(options_.input), " input");
  }
  if (finish_called_) fail(what, ": after finish_input");
  if (done_) fail(what, ": the stream has ended (", stream_status_name(result_.status), ")");
}

void SynthesisStream::check_text_ids(std::span<const int32_t> ids) const {
  for (const int32_t id : ids) {
    if (id < 0 || id >= limits_.text_vocab) {
      fail("text id ", id, " is outside the LM's text vocabulary [0, ", limits_.text_vocab, ")");
    }
  }
}

void SynthesisStream::enqueue(const std::function<void()>& change) {
  {
    std::lock_guard lock(mutex_);
    change();
  }
  signal_->notify();
}

StreamInput SynthesisStream::text_input() const {
  return options_.input == StreamInput::IncrementalText ? StreamInput::IncrementalText
                                                        : StreamInput::Text;
}

void SynthesisStream::count_text(int64_t n, const char* unit) {
  if (text_chars_ + n > max_input_chars_) {
    fail("the text is longer than this stream's limit of ", max_input_chars_, " ", unit);
  }
  text_chars_ += n;
}

namespace {
// Unicode code points in valid UTF-8 (what a user counts as characters).
int64_t code_points(std::string_view utf8) {
  int64_t n = 0;
  for (const char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}
}  // namespace

void SynthesisStream::feed_incremental(std::span<const int32_t> ids, bool speakable) {
  if (!speakable_seen_ && !speakable) {
    held_ids_.insert(held_ids_.end(), ids.begin(), ids.end());
    return;
  }
  speakable_seen_ = true;
  pending_.ids.insert(pending_.ids.end(), held_ids_.begin(), held_ids_.end());
  held_ids_.clear();
  pending_.ids.insert(pending_.ids.end(), ids.begin(), ids.end());
}

void SynthesisStream::push_text(std::string_view utf8) {
  if (frontend_ == nullptr) {
    fail(
        "this model folder has no tokenizer (CosyVoice-BlankEN/tokenizer.json or vocab.json + "
        "merges.txt); give text ids instead");
  }
  {
    std::lock_guard lock(mutex_);
    check_open("push_text", text_input());
    if (text_input() == StreamInput::Text) {
      count_text(code_points(utf8), "characters");
      text_.append(utf8);  // validated and split at finish_input
      return;
    }
    const auto ids = frontend_->encode(utf8);  // an Error on invalid UTF-8, nothing queued
    count_text(code_points(utf8), "characters");
    // Until the text so far has something to speak, by the rule the Text path applies to
    // the whole text; from then on every piece goes straight to the LM.
    bool speakable = speakable_seen_;
    if (!speakable) {
      held_text_.append(utf8);
      speakable = !frontend_->split(frontend_->normalize(held_text_)).empty();
      if (speakable) held_text_.clear();
    }
    feed_incremental(ids, speakable);
  }
  signal_->notify();
}

void SynthesisStream::push_text_ids(std::span<const int32_t> ids) {
  {
    std::lock_guard lock(mutex_);
    check_open("push_text_ids", text_input());
    check_text_ids(ids);
    count_text(static_cast<int64_t>(ids.size()), "text tokens");
    if (text_input() == StreamInput::Text) {
      if (!ids.empty()) pending_.segments.emplace_back(ids.begin(), ids.end());
      return;  // segments start at finish_input
    }
    feed_incremental(ids, !ids.empty());  // ids are taken as the caller's words
  }
  signal_->notify();
}

void SynthesisStream::push_speech_tokens(std::span<const int32_t> tokens) {
  {
    std::lock_guard lock(mutex_);
    check_open("push_speech_tokens", StreamInput::SpeechTokens);
    for (const int32_t t : tokens) {
      if (t < 0 || t >= limits_.vocab.speech_tokens) {
        fail("speech token ", t, " is outside [0, ", limits_.vocab.speech_tokens, ")");
      }
    }
    pending_.ids.insert(pending_.ids.end(), tokens.begin(), tokens.end());
  }
  signal_->notify();
}

void SynthesisStream::finish_input() {
  {
    std::lock_guard lock(mutex_);
    if (done_ || finish_called_) return;
    if (options_.input == StreamInput::Text) {
      if (!text_.empty()) {
        for (auto& seg : frontend_->prepare(text_)) pending_.segments.push_back(std::move(seg.ids));
        text_.clear();
      }
      if (pending_.segments.empty()) fail(kNothingToSpeak);
    } else if (options_.input == StreamInput::IncrementalText && !speakable_seen_) {
      fail(kNothingToSpeak);
    }
    finish_called_ = true;
    pending_.finished = true;
  }
  signal_->notify();
}

void SynthesisStream::cancel() {
  enqueue([this] { pending_.cancelled = true; });
}

SynthesisStream::Input SynthesisStream::take_input() {
  std::lock_guard lock(mutex_);
  Input out = std::move(pending_);
  pending_ = Input{};
  // Text segments wait for finish_input (they may still be split differently).
  if (options_.input == StreamInput::Text && !out.finished) {
    pending_.segments = std::move(out.segments);
    out.segments.clear();
  }
  return out;
}

void SynthesisStream::complete(StreamResult result) {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    done_ = true;
    result_ = std::move(result);
  }
  done_cv_.notify_all();
  if (options_.on_complete) options_.on_complete(result_);  // result_ is final now
}

StreamResult SynthesisStream::wait() const {
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return done_; });
  return result_;
}

bool SynthesisStream::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

double SynthesisStream::seconds_since_open() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_).count();
}

}  // namespace cosy
