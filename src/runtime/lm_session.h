// One stream's speech-LM decoding, as a state machine the batched runner drives: it says
// what to feed next (pending()), and it takes the log-probabilities of the last fed
// position to pick the next token (advance()). It holds no weights and no KV memory
// (the runner owns the pool and gives the session a sequence id).
//
// Unistream (Qwen2LM.inference): feed [sos, prompt text ++ text, task_id, prompt speech],
// then one speech token per step; EOS is banned for the first 2×len(text) steps; stop on
// any stop id (EOS, the unused id, the fill token) or after 20×len(text) tokens.
//
// Bistream (Qwen2LM.inference_bistream), for text that arrives as a chat LLM writes it:
// text and speech interleave 5:15. The prompt text and speech are consumed first, in 5:15
// pairs; then 15 speech tokens follow each 5 text tokens and a fill token asks for more
// text (forced at the official positions). A stream that needs text and has none waits
// (it is simply not ready) and never holds up other streams. At end of text the rest of
// the text and task_id are appended and decoding runs free until EOS.
// Differences from the official code, none of which the official fixtures exercise:
//  - text that arrives in bulk is consumed 5 tokens per fill at once, as if it had
//    arrived token by token (the official loop takes one arrival per fill and lags);
//  - if the text ends before the prompt speech is consumed, the leftover prompt speech
//    follows task_id (the training layout) instead of being dropped;
//  - ids that are invalid in a phase (the unused stop id anywhere; EOS while text still
//    flows; the fill token after the text ended) are banned instead of raising;
//  - free decoding after the text is capped at 20×len(text) tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/lm/speech_lm.h"
#include "runtime/quality_guard.h"
#include "runtime/sampler.h"

namespace cosy {

// What a session needs to know about the model.
struct LmSessionLimits {
  SpeechVocab vocab;
  int64_t text_vocab = 0;
  int64_t mix_text = 5, mix_speech = 15;  // bistream text:speech ratio
  int64_t max_positions = 0;              // the LM's context
  // CosyVoice3: prompt text ++ text must hold <|endofprompt|> (the official assert); a
  // bistream session's prompt text must. -1: no such rule (CosyVoice2).
  int32_t end_of_prompt = -1;
  static LmSessionLimits of(const SpeechLm& lm);
};

struct LmSessionOptions {
  std::vector<int32_t> prompt_text;    // text ids of the prompt transcript
  std::vector<int32_t> prompt_speech;  // the prompt's speech tokens
  std::vector<int32_t> text;           // unistream: all of it; bistream: what is known so far
  bool bistream = false;
  SamplingParams sampling;
  double min_token_text_ratio = 2;
  double max_token_text_ratio = 20;
  // > 0: exactly this many speech tokens, stop ids banned until then (benchmarks give
  // random weights a fixed length this way). Replaces the ratio limits.
  int64_t fixed_tokens = 0;
  // > 0: round(this × the segment's text tokens) speech tokens (at least 1), stop ids banned
  // until then: a realistic length from random weights (loadtest draws it around a speech
  // rate). Bistream: counted once the text has ended. Replaces the ratio limits.
  double forced_tokens_per_text_token = 0;
  bool keep_logp = false;  // keep the last step's log-probabilities (tests, tracing)
  // Below the minimum length the official code masks id speech_token_size: EOS in
  // CosyVoice2, but sos in CosyVoice3, so a CosyVoice3 stream can end early. On: mask the
  // family's EOS instead (CosyVoice3's 6562). CosyVoice2 decodes the same either way.
  bool corrected_eos_guard = false;
  // Off: exactly the official decoding. On: runtime/quality_guard.h; the flow then sees
  // only committed_tokens(), guard.lookahead behind the LM.
  QualityGuardOptions guard;
};

enum class LmFinish { None, Eos, MaxLength, Cancelled, Error };
const char* lm_finish_name(LmFinish f);

// What the next step may emit: one forced id (a bistream fill at its official position),
// or any id but the banned ones.
struct LmStepRule {
  std::optional<int32_t> forced;
  std::vector<int32_t> banned;
};
class LmSession {
 public:
  // Checks the request (ids in range, non-empty text for unistream, prompt within the
  // context); an Error says what is wrong.
  LmSession(const LmSessionLimits& limits, LmSessionOptions options);

  // Bistream: more text / no more text. Errors on a unistream session or after end_text.
  void push_text(std::span<const int32_t> ids);
  void end_text();

  bool ready() const { return ready_; }  // pending() is to be fed now
  bool finished() const { return finish_ != LmFinish::None; }
  bool waiting_for_text() const { return !ready_ && !finished(); }
  std::span<const LmInput> pending() const { return lm_input_; }
  // After an eviction: every input fed before it, to be fed again ahead of pending().
  std::span<const LmInput> replay() const { return replay_; }
  // Leading inputs of pending() that depend on the voice alone (sos, then the prompt
  // text), so their KV rows may come from another stream of the voice: before the first
  // step of a unistream session; 0 otherwise (the bistream layout mixes text in early).
  int64_t voice_prefix() const;

  // The runner dropped this session's KV to let other streams go on (preemption by
  // recompute): its next step feeds replay() then pending(), which rebuilds the same
  // cache. Sampling state is untouched, so the stream continues where it was.
  void evict();
  int64_t evictions() const { return evictions_; }

  // The runner fed pending(); `logp` is the LM's log-softmax at the last fed position.
  // Returns the speech token this step emitted, if any (a fill token or a stop is none).
  // `chosen` (beam search): take this id instead of sampling one; it must obey
  // next_rule(), and the guard then neither masks nor rolls back (the search does that).
  std::optional<int32_t> advance(std::span<const float> logp,
                                 std::optional<int32_t> chosen = std::nullopt);
  // Beam search's view of the next step: the phase's rule, the ids the guard forbids after
  // these tokens (empty when it is off), and whether text and speech still interleave.
  LmStepRule next_rule() const;
  std::vector<int32_t> guard_forbidden() const;
  bool interleaving() const { return phase_ == Phase::Interleave; }
  // Throws what advance() would for these log-probabilities (not ready, wrong size, NaN).
  void check_logp(std::span<const float> logp);

  void cancel();
  void fail(std::string message);  // the runner could not serve this stream
  LmFinish finish_reason() const { return finish_; }
  const std::string& error() const { return error_; }

  // Emitted speech tokens. With the guard on, the ones past committed_tokens() may still be
  // rolled back; the ones before never change.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t committed_tokens() const;
  // Positions fed so far: what the stream's KV sequence must hold (a rollback drops the
  // rest; the runner truncates the sequence to this after advance()).
  int64_t fed_positions() const { return static_cast<int64_t>(fed_.size()); }
  // What the guard saw and did in this segment (the summary fields filled in now).
  QualityReport quality_report() const;
  int64_t steps() const { return steps_; }
  const std::vector<float>& last_logp() const { return last_logp_; }

  // Set by the runner: the stream's KV pool sequence (0: none yet), and how many leading
  // inputs of pending() that sequence already holds (a voice prefix it was forked from).
  int64_t kv_seq = 0;
  int64_t kv_skip = 0;

 private:
  void check_text(std::span<const int32_t> ids, const char* what) const;
  void schedule();  // bistream: decide what to feed next, or wait
  void go_final();
  std::optional<int32_t> emit(int32_t token);
  // Beam search chose for this hypothesis: counts the guard's action when the id it would
  // have picked alone was one the guard forbids.
  void note_beam_choice(std::span<const float> logp, std::span<const int32_t> banned);
  // Samples the next id; with the guard on, masks and resamples an id that would break a
  // run, loop or silence bound. Sets `masked` when it did.
  int32_t pick(std::span<const float> logp, std::span<const int32_t> banned, bool& masked,
               bool& babble);
  // After a speech token: the guard's rollback or regeneration, if one is due; true when
  // it rolled the session back.
  bool after_emit(bool masked, bool babble);
  // Drops the tokens after the first `keep` (never below what is committed or fed with
  // other input since) and resamples from there; false when there is nothing to drop.
  bool roll_back(int64_t keep, bool regenerate);
  void set_floor();  // tokens so far can no longer be rolled back (new text was fed)
  // The ratio band for this segment, as speech tokens per text token.
  double band_low() const;
  double band_high() const;
  int64_t forced_length() const;  // fixed or forced speech tokens; 0: the LM decides

  LmSessionLimits limits_;
  LmSessionOptions opt_;
  TokenSampler sampler_;
  enum class Phase { Interleave, Free };
  Phase phase_ = Phase::Free;
  std::vector<LmInput> lm_input_;  // the official code's lm_input
  std::vector<LmInput> fed_;       // every input fed so far (kept for an eviction)
  std::vector<LmInput> replay_;    // fed_ after an eviction, to be fed again
  int64_t evictions_ = 0;
  bool ready_ = false;
  bool text_ended_ = false;
  std::vector<LmInput> text_cache_;     // bistream: text not yet fed
  std::vector<LmInput> prompt_speech_;  // bistream: prompt speech not yet fed
  std::vector<int32_t> history_;        // the official out_tokens (fill tokens included)
  std::vector<int32_t> tokens_;
  int64_t text_len_ = 0;  // text tokens of the request (prompt excluded)
  int64_t next_fill_ = -1;
  int64_t steps_ = 0;
  LmFinish finish_ = LmFinish::None;
  std::string error_;
  std::vector<float> last_logp_;
  // The guard.
  QualityMonitor monitor_;
  struct Mark {  // the state before a token was sampled
    int64_t fed = 0;
    int64_t history = 0;
  };
  std::vector<Mark> marks_;  // one per token
  int64_t committed_ = 0;
  int64_t floor_ = 0;
  double prompt_ratio_ = 0;  // the voice's speech tokens per text token; 0: unknown
};

}  // namespace cosy
