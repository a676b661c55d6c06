#include "runtime/utterance.h"

#include "core/error.h"

namespace cosy {

Utterance::Utterance(const FlowModel& flow, const HiftVocoder& vocoder,
                     const LmSessionLimits& limits, const StreamOptions& options, int64_t segment,
                     std::vector<int32_t> text, bool with_lm, const FlowStreamState* prompt_state,
                     UncondFirstPassCache* uncond_cache)
    : flow_(flow), options_(options), segment_(segment) {
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
  }
  if (options.streaming) {
    flow_stream_ = std::make_unique<FlowStream>(flow, voice.speech, voice.feat, voice.embedding,
                                                options.flow, prompt_state, uncond_cache);
  }
  hift_ =
      std::make_unique<HiftStream>(vocoder, options.vocoder_seed + static_cast<uint64_t>(segment));
  if (options.speed != 1.0) stretch_ = std::make_unique<MelStretch>(options.speed, flow.mel_bins());
}

bool Utterance::take_lm_output() {
  // Only committed tokens: the guard or a beam search may still change the ones after them.
  const auto& out = lm_->tokens();
  const auto committed = static_cast<size_t>(lm_->committed_tokens());
  if (committed > lm_taken_) {
    push_tokens({out.data() + lm_taken_, committed - lm_taken_});
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
  if (flow_stream_) flow_stream_->push_tokens(tokens);
}

void Utterance::end_tokens() {
  if (tokens_ended_) return;
  tokens_ended_ = true;
  if (flow_stream_) flow_stream_->finish();
  if (tokens_.empty()) done_ = true;  // nothing to say (an LM that stopped at once)
}

int64_t Utterance::tokens_missing() const {
  return flow_stream_ ? flow_stream_->tokens_missing() : 0;
}

double Utterance::next_flow_flops() const {
  if (flow_stream_) return flow_stream_->next_call_flops();
  const auto prompt = static_cast<int64_t>(options_.voice->speech.size());
  return flow_.flops(prompt + static_cast<int64_t>(tokens_.size()));
}

bool Utterance::flow_ready() const {
  if (done_) return false;
  if (flow_stream_) return flow_stream_->ready();
  return tokens_ended_ && !offline_flow_done_;
}

FlowRequest Utterance::offline_request() {
  const VoicePrompt& voice = *options_.voice;
  FlowRequest r;
  r.prompt_tokens = voice.speech;
  r.tokens = tokens_;
  r.prompt_feat = voice.feat;
  r.embedding = voice.embedding;
  r.mel = &flow_out();
  return r;
}

double Utterance::flow_flops_done() const {
  const auto prompt = static_cast<int64_t>(options_.voice->speech.size());
  if (flow_stream_) return flow_.flops(prompt + flow_stream_->emitted_tokens());
  return offline_flow_done_ ? flow_.flops(prompt + static_cast<int64_t>(tokens_.size())) : 0;
}

void Utterance::flow_ran() {
  if (!flow_stream_) offline_flow_done_ = true;
  if (!stretch_) return;
  if (!flow_stream_) {  // the whole segment at once: exactly the official interpolation
    const std::vector<float> stretched =
        MelStretch::whole(flow_mel_, flow_.mel_bins(), options_.speed);
    mel_.insert(mel_.end(), stretched.begin(), stretched.end());
  } else {
    stretch_->push(flow_mel_, mel_);
    if (flow_done()) stretch_->finish(mel_);
  }
  flow_mel_.clear();
}

bool Utterance::flow_done() const {
  return flow_stream_ ? flow_stream_->done() : offline_flow_done_;
}

int64_t Utterance::mel_frames() const {
  return static_cast<int64_t>(mel_.size()) / flow_.mel_bins();
}

bool Utterance::hift_ready() const {
  if (done_ || hift_->finished()) return false;
  // A non-final chunk must carry at least the vocoder's cached frames; at the end, the
  // held-back tail is flushed even with no new mel.
  return flow_done() || (!mel_.empty() && mel_frames() >= hift_->cache_frames());
}

int64_t Utterance::hift_frames_in_step() const {
  return mel_frames() + (hift_calls_ > 0 ? hift_->cache_frames() : 0);
}

HiftStream::Step Utterance::hift_step(std::vector<float>& out) {
  if (options_.reseed_vocoder_per_chunk) {
    hift_->generator().manual_seed(options_.vocoder_seed + static_cast<uint64_t>(hift_calls_));
  }
  HiftStream::Step st;
  st.stream = hift_.get();
  st.mel = mel_;
  st.frames = mel_frames();
  st.finalize = flow_done();
  st.out = &out;
  return st;
}

void Utterance::hift_ran(bool finalized) {
  mel_.clear();
  ++hift_calls_;
  if (finalized) done_ = true;
}

}  // namespace cosy
