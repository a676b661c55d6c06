#include "runtime/utterance.h"

#include "core/error.h"
#include "runtime/voice_prompt.h"

namespace cosy {

Utterance::Utterance(const FlowStage& flow, const VocoderStage& vocoder,
                     const LmSessionLimits& limits, const StreamOptions& options, int64_t segment,
                     std::vector<int32_t> text, bool with_lm, PendingPromptState prompt_state,
                     UncondFirstPassCache* uncond_cache, const SilentTokenCap::Options* silent_cap)
    : mel_bins_(flow.mel_bins()),
      options_(options),
      segment_(segment),
      flow_stage_(flow),
      uncond_cache_(uncond_cache),
      prompt_state_(std::move(prompt_state)) {
  const VoicePrompt& voice = *options.voice;
  if (with_lm) {
    LmSessionOptions o;
    o.prompt_text = voice.text;
    o.prompt_speech = voice.lm_speech;
    o.text = std::move(text);
    o.bistream = options.input == StreamInput::IncrementalText;
    o.sampling = options.sampling;
    // Each segment draws from its own seed, so a segment's tokens do not depend on how
    // the text before it was split.
    o.sampling.seed = options.sampling.seed + static_cast<uint64_t>(segment);
    o.min_token_text_ratio = options.min_token_text_ratio;
    o.max_token_text_ratio = options.max_token_text_ratio;
    o.fixed_tokens = options.fixed_tokens;
    o.forced_tokens_per_text_token = options.forced_tokens_per_text_token;
    o.guard = options.guard;
    lm_ = std::make_unique<LmDecoder>(limits, std::move(o), options.beams);
    if (silent_cap != nullptr) silent_cap_.emplace(*silent_cap);
  }
  open_flow();
  hift_ = vocoder.open(options.vocoder_seed + static_cast<uint64_t>(segment));
  if (options.speed != 1.0) stretch_ = std::make_unique<MelStretch>(options.speed, mel_bins_);
}

bool Utterance::open_flow() {
  if (flow_) return true;
  std::shared_ptr<const FlowStreamState> state;
  if (prompt_state_.valid()) {
    if (prompt_state_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
    state = prompt_state_.get();
  }
  // A prompt with no complete chunk has nothing to start from.
  const FlowStreamState* start = state && state->committed_tokens() > 0 ? state.get() : nullptr;
  flow_ =
      flow_stage_.open(*options_.voice, options_.streaming, options_.flow, start, uncond_cache_);
  prompt_state_ = {};  // the stream keeps what it needs of the state
  if (!tokens_.empty()) flow_->push_tokens(tokens_);
  if (tokens_ended_) flow_->finish();
  return true;
}

bool Utterance::take_lm_output() {
  // Only committed tokens: the guard or a beam search may still change the ones after them.
  const auto& out = lm_->tokens();
  const auto committed = static_cast<size_t>(lm_->committed_tokens());
  if (committed > lm_taken_) {
    std::span<const int32_t> fresh(out.data() + lm_taken_, committed - lm_taken_);
    if (silent_cap_) {
      // The LM has conditioned on every token; the flow gets them without over-long silence.
      std::vector<int32_t> kept;
      for (const int32_t t : fresh)
        if (silent_cap_->keep(t)) kept.push_back(t);
      push_tokens(kept);
    } else {
      push_tokens(fresh);
    }
    lm_taken_ = committed;
  }
  if (!lm_->finished()) return true;
  switch (lm_->finish_reason()) {
    case LmFinish::Eos:
    case LmFinish::MaxLength:
      end_tokens();
      return true;
    default:
      return false;
  }
}

void Utterance::push_tokens(std::span<const int32_t> tokens) {
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  if (flow_) flow_->push_tokens(tokens);
}

void Utterance::end_tokens() {
  if (tokens_ended_) return;
  tokens_ended_ = true;
  if (flow_) flow_->finish();
  if (tokens_.empty()) done_ = true;  // nothing to say (an LM that stopped at once)
}

int64_t Utterance::tokens_missing() const { return flow_ ? flow_->tokens_missing() : 0; }

double Utterance::next_flow_flops() const { return flow_ ? flow_->next_call_flops() : 0; }

bool Utterance::flow_ready() const { return !done_ && flow_ && flow_->ready(); }

double Utterance::flow_flops_done() const { return flow_ ? flow_->flops_done() : 0; }

void Utterance::flow_ran() {
  if (!stretch_) return;
  if (!options_.streaming) {  // the whole segment at once: exactly the official interpolation
    const std::vector<float> stretched = MelStretch::whole(flow_mel_, mel_bins_, options_.speed);
    mel_.insert(mel_.end(), stretched.begin(), stretched.end());
  } else {
    stretch_->push(flow_mel_, mel_);
    if (flow_done()) stretch_->finish(mel_);
  }
  flow_mel_.clear();
}

bool Utterance::flow_done() const { return flow_ && flow_->done(); }

int64_t Utterance::mel_frames() const { return static_cast<int64_t>(mel_.size()) / mel_bins_; }

bool Utterance::hift_ready() const {
  if (done_ || hift_->finished()) return false;
  // A non-final chunk must carry at least the vocoder's fewest frames; at the end, the
  // held-back tail is flushed even with no new mel.
  return flow_done() || (!mel_.empty() && mel_frames() >= hift_->min_frames());
}

int64_t Utterance::hift_frames_in_step() const {
  return hift_->window_frames(mel_frames(), flow_done());
}

VocoderWork Utterance::hift_step(std::vector<float>& out) {
  if (options_.reseed_vocoder_per_chunk)
    hift_->reseed(options_.vocoder_seed + static_cast<uint64_t>(hift_calls_));
  VocoderWork w;
  w.unit = hift_.get();
  w.mel = mel_;
  w.frames = mel_frames();
  w.finalize = flow_done();
  w.out = &out;
  return w;
}

void Utterance::hift_ran(bool finalized) {
  mel_.clear();
  ++hift_calls_;
  if (finalized) done_ = true;
}

}  // namespace cosy
