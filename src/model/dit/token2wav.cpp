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
      prompt_tokens_(prompt_tokens),
      prompt_feat_(prompt_feat),
      embedding_(embedding),
      opt_(options),
      hop_(options.first_hop),
      vocoder_(hift) {
  if (opt_.first_hop <= 0 || opt_.max_hop < opt_.first_hop || opt_.hop_scale < 1)
    fail("cosyvoice3 stream: bad hop schedule");
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  prompt_pad_ = (tp + hop_ - 1) / hop_ * hop_ - tp;  // ceil(P / hop) * hop - P
}

void Cv3Token2Wav::push_tokens(std::span<const int32_t> tokens) {
  if (finished_) fail("cosyvoice3 stream: tokens after finish()");
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

void Cv3Token2Wav::finish() { finished_ = true; }

int64_t Cv3Token2Wav::this_hop() const { return token_offset_ == 0 ? hop_ + prompt_pad_ : hop_; }

bool Cv3Token2Wav::ready() const {
  if (done_) return false;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return have >= this_hop() + flow_.config().pre_lookahead_len || finished_;
}

Cv3Chunk Cv3Token2Wav::step() {
  if (!ready()) fail("cosyvoice3 stream: no chunk can run yet");
  const int64_t la = flow_.config().pre_lookahead_len, bins = flow_.mel_bins();
  const int64_t ratio = flow_.config().token_mel_ratio;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  Cv3Chunk c;
  c.final = finished_ && have < this_hop() + la;
  c.flow_tokens = c.final ? static_cast<int64_t>(tokens_.size()) : token_offset_ + this_hop() + la;
  DitFlowRequest r;
  r.prompt_tokens = prompt_tokens_;
  r.tokens = std::span<const int32_t>(tokens_).first(static_cast<size_t>(c.flow_tokens));
  r.prompt_feat = prompt_feat_;
  r.embedding = embedding_;
  r.streaming = !c.final || !opt_.final_full_attention;
  r.finalize = c.final;
  r.mel = &c.flow_mel;
  r.first_frame = &c.flow_first_frame;
  if (opt_.incremental && r.streaming) r.state = &state_;
  if (c.flow_tokens > 0) flow_.infer({&r, 1});
  // The frames past those already emitted join the vocoder's input.
  const int64_t from = (token_offset_ * ratio - c.flow_first_frame) * bins;
  if (from < 0) fail("cosyvoice3 stream: the flow skipped frames not yet emitted");
  const std::span<const float> fresh =
      static_cast<int64_t>(c.flow_mel.size()) > from
          ? std::span<const float>(c.flow_mel).subspan(static_cast<size_t>(from))
          : std::span<const float>();
  if (!opt_.incremental) mel_.insert(mel_.end(), fresh.begin(), fresh.end());
  if (c.final) {
    token_offset_ = static_cast<int64_t>(tokens_.size());
    done_ = true;
    state_ = FlowStreamState{};  // release the caches at once
  } else {
    token_offset_ += this_hop();
    hop_ = std::min(opt_.max_hop, hop_ * opt_.hop_scale);
  }
  if (opt_.incremental) {
    c.audio = vocoder_.push(fresh, c.final);
    c.hift_frames = vocoder_.frames();
    c.hift_window = vocoder_.last_window_frames();
    return c;
  }
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
