#include "model/dit/dit_flow_stream.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

DitFlowStream::DitFlowStream(const DitFlowModel& flow, std::span<const int32_t> prompt_tokens,
                             std::span<const float> prompt_feat, std::span<const float> embedding,
                             FlowStreamOptions options)
    : flow_(flow),
      prompt_tokens_(prompt_tokens),
      prompt_feat_(prompt_feat),
      embedding_(embedding),
      options_(options),
      hop_(options.first_hop) {
  options_.validate();
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  prompt_pad_ = (tp + hop_ - 1) / hop_ * hop_ - tp;  // ceil(P / hop) * hop - P
  state_.half_kv = options_.half_state;
}

void DitFlowStream::push_tokens(std::span<const int32_t> tokens) {
  if (finished_) fail("dit flow stream: tokens pushed after finish()");
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

void DitFlowStream::finish() { finished_ = true; }

int64_t DitFlowStream::this_hop() const { return token_offset_ == 0 ? hop_ + prompt_pad_ : hop_; }

bool DitFlowStream::next_is_final() const {
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return finished_ && have < this_hop() + flow_.config().pre_lookahead_len;
}

bool DitFlowStream::ready() const {
  if (done_) return false;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return have >= this_hop() + flow_.config().pre_lookahead_len || finished_;
}

int64_t DitFlowStream::tokens_missing() const {
  if (done_ || finished_) return 0;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return std::max<int64_t>(0, this_hop() + flow_.config().pre_lookahead_len - have);
}

double DitFlowStream::next_call_flops() const {
  if (done_) return 0;
  const auto prompt = static_cast<int64_t>(prompt_tokens_.size());
  const bool final_chunk = next_is_final();
  const bool streaming = !final_chunk || !options_.final_full_attention;
  const int64_t tokens =
      prompt + (final_chunk ? static_cast<int64_t>(tokens_.size()) : token_offset_ + this_hop());
  const int64_t past = options_.incremental && streaming ? state_.committed_tokens() : 0;
  return flow_.flops(tokens, past, streaming);
}

void DitFlowStream::step(const DitFlowModel& flow, std::span<Step> steps) {
  const int64_t la = flow.config().pre_lookahead_len, bins = flow.mel_bins();
  const int64_t ratio = flow.config().token_mel_ratio;
  struct Pending {
    Step* step;
    bool final_chunk;
    std::vector<float> mel;
    int64_t first = 0;
  };
  std::vector<Pending> pending;
  for (auto& st : steps) {
    DitFlowStream& s = *st.stream;
    if (!s.ready()) continue;
    const auto have = static_cast<int64_t>(s.tokens_.size()) - s.token_offset_;
    const bool final_chunk = have < s.this_hop() + la;
    if (final_chunk && have == 0) {  // no frames left: the official call would emit none
      s.done_ = true;
      s.state_ = FlowStreamState{};
      continue;
    }
    pending.push_back({&st, final_chunk, {}, 0});
  }
  std::vector<DitFlowRequest> requests(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    DitFlowStream& s = *pending[i].step->stream;
    DitFlowRequest& r = requests[i];
    r.prompt_tokens = s.prompt_tokens_;
    r.prompt_feat = s.prompt_feat_;
    r.embedding = s.embedding_;
    r.mel = &pending[i].mel;
    r.first_frame = &pending[i].first;
    r.finalize = pending[i].final_chunk;
    r.streaming = !pending[i].final_chunk || !s.options_.final_full_attention;
    r.tokens = pending[i].final_chunk
                   ? std::span<const int32_t>(s.tokens_)
                   : std::span<const int32_t>(s.tokens_).first(
                         static_cast<size_t>(s.token_offset_ + s.this_hop() + la));
    if (s.options_.incremental && r.streaming) r.state = &s.state_;
  }
  flow.infer(requests);
  for (auto& p : pending) {
    DitFlowStream& s = *p.step->stream;
    // The frames past those already emitted are the chunk's.
    const int64_t skip = s.token_offset_ * ratio - p.first;
    if (skip < 0) fail("dit flow stream: the flow skipped frames not yet emitted");
    const int64_t from = std::min<int64_t>(skip * bins, static_cast<int64_t>(p.mel.size()));
    p.step->out->insert(p.step->out->end(), p.mel.begin() + from, p.mel.end());
    if (p.step->first_frame != nullptr) *p.step->first_frame = p.first;
    if (p.step->computed != nullptr) *p.step->computed = std::move(p.mel);
    if (p.final_chunk) {
      s.token_offset_ = static_cast<int64_t>(s.tokens_.size());
      s.done_ = true;
      s.state_ = FlowStreamState{};  // release the caches at once
    } else {
      s.token_offset_ += s.this_hop();
      s.hop_ = std::min(s.options_.max_hop, s.hop_ * s.options_.hop_scale);
    }
  }
}

}  // namespace cosy
