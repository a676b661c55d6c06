// One synthesis stream of an Engine, as its user sees it: feed input, get audio chunks
// through a callback that can cancel, wait for the result. Every method is thread-safe
// and returns at once; the engine's scheduler thread does the work. Input the stream
// cannot take (the wrong kind, after finish_input, too much, text without a tokenizer,
// ids out of range) is an Error thrown to the caller, before anything is queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/flow/flow_stream.h"
#include "runtime/lm_decoder.h"
#include "runtime/lm_session.h"
#include "runtime/quality_guard.h"
#include "runtime/sampler.h"
#include "runtime/voice_prompt.h"

namespace cosy {

namespace text {
class TextFrontend;
}

enum class StreamInput {
  Text,             // the whole text, then finish_input(): normalised, split into segments
  IncrementalText,  // text pieces as a chat LLM writes them (the official bistream path)
  SpeechTokens,     // speech tokens straight to the flow (token2wav; the official vc path)
};
const char* stream_input_name(StreamInput k);
StreamInput parse_stream_input(const std::string& s);  // text | incremental | tokens

struct StreamResult;

struct StreamOptions {
  std::shared_ptr<const VoicePrompt> voice;  // required
  StreamInput input = StreamInput::Text;
  // Audio in chunks as the flow schedule allows (CosyVoice2Model.tts stream=True), or the
  // whole of each segment at once (stream=False: full-attention flow, one vocoder call).
  bool streaming = true;
  FlowStreamOptions flow;  // streaming schedule: first hop, growth, incremental
  SamplingParams sampling;
  uint64_t vocoder_seed = 0;  // seeds the vocoder's source noise (torch.manual_seed)
  // Reseed the vocoder with vocoder_seed + k before its k-th call of a segment, so every
  // chunk's noise is fixed by the seed alone (the official fixtures were made this way).
  bool reseed_vocoder_per_chunk = false;
  // > 0: the LM emits exactly this many speech tokens per segment (benchmarks: random
  // weights then give a fixed length).
  int64_t fixed_tokens = 0;
  // > 0: each segment's speech tokens are round(this × its text tokens), whatever the LM
  // would say (LmSessionOptions::forced_tokens_per_text_token).
  double forced_tokens_per_text_token = 0;
  double min_token_text_ratio = 2, max_token_text_ratio = 20;
  // Speaking rate, 0.5–2.0: the mel is stretched before the vocoder (runtime/mel_stretch.h),
  // in streaming too; pitch is kept.
  double speed = 1.0;
  // The quality guard (runtime/quality_guard.h); off: the official decoding exactly.
  QualityGuardOptions guard;
  // num_beams > 1: the LM decodes by beam search (runtime/lm_decoder.h) instead of
  // sampling; streaming then sends the prefix the beams share.
  BeamSearchOptions beams;
  // Called once when the stream ends, whatever the status, on the engine's scheduler thread
  // (return quickly; never call back into the engine's blocking methods). A server learns
  // so of an end that sends no audio: a failure or a cancel.
  std::function<void(const StreamResult&)> on_complete;
  void validate() const;
};

struct AudioChunk {
  std::span<const float> samples;  // 24 kHz mono in [-0.99, 0.99]; valid during the call
  std::span<const float> mel;      // the new mel frames it was made from, [frames, bins]
  int64_t index = 0;               // chunk number within the stream
  int64_t segment = 0;             // text segment it belongs to
  bool last = false;               // the stream's final chunk (exactly one, on success)
};
// Called on the engine's scheduler thread: return quickly. Returning false cancels.
using AudioCallback = std::function<bool(const AudioChunk&)>;

enum class StreamStatus { Running, Done, Cancelled, Failed };
const char* stream_status_name(StreamStatus s);

struct StreamResult {
  StreamStatus status = StreamStatus::Running;
  std::string error;                   // Failed: why
  std::vector<int32_t> speech_tokens;  // every segment's LM output, in order
  int64_t segments = 0;
  int64_t chunks = 0;
  int64_t samples = 0;
  double first_chunk_s = -1;  // from open to the first non-empty chunk's callback
  QualityReport quality;      // the guard's report over the segments that ran
  double total_s = 0;         // from open to the end
};

// Wakes the scheduler; shared so a stream handle can outlive its engine.
struct SchedulerSignal {
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t generation = 0;
  bool stopping = false;
  void notify();
};

// The error for text with nothing in it to speak.
inline constexpr const char* kNothingToSpeak =
    "the text has nothing to speak (only punctuation, symbols, emoji or spaces)";

class SynthesisStream {
 public:
  // Text: appends to the text (split at finish_input). IncrementalText: tokenized and fed
  // now. Needs the model folder's tokenizer.
  void push_text(std::string_view utf8);
  // Text ids as the tokenizer would give them. Text: each call is one segment, as split
  // by the caller. IncrementalText: fed now.
  void push_text_ids(std::span<const int32_t> ids);
  // SpeechTokens input only.
  void push_speech_tokens(std::span<const int32_t> tokens);
  // No more input. Text input with nothing to speak (no text, or only punctuation, symbols,
  // emoji or spaces) is an Error (kNothingToSpeak), the same for both kinds of text input.
  void finish_input();
  // Stops the stream; its memory is released at the scheduler's next step. Idempotent.
  void cancel();

  StreamResult wait() const;  // blocks until the stream ends
  bool done() const;
  const StreamOptions& options() const { return options_; }

  // Engine side -------------------------------------------------------------------------
  struct Input {
    std::vector<std::vector<int32_t>> segments;  // Text: complete segments
    std::vector<int32_t> ids;                    // IncrementalText / SpeechTokens
    bool finished = false;
    bool cancelled = false;
  };
  SynthesisStream(StreamOptions options, AudioCallback callback, const LmSessionLimits& limits,
                  const text::TextFrontend* frontend, int64_t max_input_chars,
                  std::shared_ptr<SchedulerSignal> signal);
  Input take_input();  // what arrived since the last call
  const AudioCallback& callback() const { return callback_; }
  void complete(StreamResult result);
  double seconds_since_open() const;
  std::chrono::steady_clock::time_point opened_at() const { return opened_; }

 private:
  void check_open(const char* what, StreamInput kind) const;  // under mutex_
  void check_text_ids(std::span<const int32_t> ids) const;
  // The kind text pushes must match: IncrementalText, else Text (so a speech-token stream
  // refuses text by name).
  StreamInput text_input() const;
  // Under mutex_: adds n to the stream's text size, or fails past max_input_chars.
  void count_text(int64_t n, const char* unit);
  // Under mutex_: queues incremental text ids. Until a piece with something to speak has
  // come, pieces are held back (the LM never sees text that is only punctuation).
  void feed_incremental(std::span<const int32_t> ids, bool speakable);
  void enqueue(const std::function<void()>& change);

  const StreamOptions options_;
  const AudioCallback callback_;
  const LmSessionLimits limits_;
  const text::TextFrontend* frontend_;
  const int64_t max_input_chars_;
  std::shared_ptr<SchedulerSignal> signal_;
  const std::chrono::steady_clock::time_point opened_;

  mutable std::mutex mutex_;
  mutable std::condition_variable done_cv_;
  Input pending_;
  std::string text_;  // Text input: everything so far
  int64_t text_chars_ = 0;
  bool speakable_seen_ = false;    // IncrementalText: a piece with something to speak came
  std::vector<int32_t> held_ids_;  // IncrementalText: pieces before that one
  std::string held_text_;          // and their text
  bool finish_called_ = false;
  bool done_ = false;
  StreamResult result_;
};

}  // namespace cosy
