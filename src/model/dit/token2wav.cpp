#include "model/dit/token2wav.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

Cv3Token2Wav::Cv3Token2Wav(const DitFlowModel& flow, const CausalHiftVocoder& hift,
                           std::span<const int32_t> prompt_tokens,
                           std::span<const float> prompt_feat, std::span<const float> embedding,
                           Cv3StreamOptions options)
    : flow_(flow),
      hift_(hift),
      opt_(options),
      flow_stream_(flow, prompt_tokens, prompt_feat, embedding, options),
      vocoder_(hift) {}

void Cv3Token2Wav::push_tokens(std::span<const int32_t> tokens) {
  flow_stream_.push_tokens(tokens);
  tokens_ += static_cast<int64_t>(tokens.size());
}

void Cv3Token2Wav::finish() {
  flow_stream_.finish();
  finished_ = true;
}

bool Cv3Token2Wav::ready() const { return flow_stream_.ready(); }

Cv3Chunk Cv3Token2Wav::step() {
  if (!ready()) fail("cosyvoice3 stream: no chunk can run yet");
  const int64_t bins = flow_.mel_bins();
  Cv3Chunk c;
  std::vector<float> fresh;
  DitFlowStream::Step st{&flow_stream_, &fresh, &c.flow_mel, &c.flow_first_frame};
  DitFlowStream::step(flow_, {&st, 1});
  c.final = flow_stream_.done();
  c.flow_tokens =
      c.final ? tokens_ : flow_stream_.emitted_tokens() + flow_.config().pre_lookahead_len;
  if (opt_.incremental) {
    c.audio = vocoder_.push(fresh, c.final);
    c.hift_frames = vocoder_.frames();
    c.hift_window = vocoder_.last_window_frames();
    return c;
  }
  // The official way: the vocoder over all the mel so far, the samples past those sent.
  mel_.insert(mel_.end(), fresh.begin(), fresh.end());
  c.hift_frames = static_cast<int64_t>(mel_.size()) / bins;
  c.hift_window = c.hift_frames;
  if (c.hift_frames > (c.final ? 0 : hift_.held_back_frames())) {
    std::vector<float> speech;
    CausalHiftRequest h;
    h.mel = mel_;
    h.frames = c.hift_frames;
    h.finalize = c.final;
    h.speech = &speech;
    hift_.vocode({&h, 1});
    if (static_cast<int64_t>(speech.size()) > samples_sent_) {
      c.audio.assign(speech.begin() + samples_sent_, speech.end());
      samples_sent_ = static_cast<int64_t>(speech.size());
    }
  }
  return c;
}

std::vector<float> Cv3Token2Wav::offline(const DitFlowModel& flow, const CausalHiftVocoder& hift,
                                         std::span<const int32_t> prompt_tokens,
                                         std::span<const float> prompt_feat,
                                         std::span<const float> embedding,
                                         std::span<const int32_t> tokens, std::vector<float>* mel) {
  std::vector<float> m;
  DitFlowRequest r;
  r.prompt_tokens = prompt_tokens;
  r.tokens = tokens;
  r.prompt_feat = prompt_feat;
  r.embedding = embedding;
  r.mel = &m;
  flow.infer({&r, 1});
  std::vector<float> speech;
  CausalHiftRequest h;
  h.mel = m;
  h.frames = static_cast<int64_t>(m.size()) / flow.mel_bins();
  h.speech = &speech;
  hift.vocode({&h, 1});
  if (mel != nullptr) *mel = std::move(m);
  return speech;
}

}  // namespace cosy
