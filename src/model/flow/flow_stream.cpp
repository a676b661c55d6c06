#include "model/flow/flow_stream.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

void FlowStreamOptions::validate() const {
  if (first_hop <= 0) fail("flow stream: first_hop must be positive, got ", first_hop);
  if (max_hop < first_hop)
    fail("flow stream: max_hop (", max_hop, ") is below first_hop (", first_hop, ")");
  if (hop_scale < 1) fail("flow stream: hop_scale must be at least 1, got ", hop_scale);
  if (half_state && !incremental) fail("flow stream: half_state needs incremental streaming");
}

FlowStream::FlowStream(const FlowModel& flow, std::span<const int32_t> prompt_tokens,
                       std::span<const float> prompt_feat, std::span<const float> embedding,
                       FlowStreamOptions options, const FlowStreamState* prompt_state,
                       UncondFirstPassCache* uncond_cache)
    : flow_(flow),
      prompt_tokens_(prompt_tokens),
      prompt_feat_(prompt_feat),
      embedding_(embedding),
      options_(options),
      uncond_cache_(uncond_cache),
      hop_(options.first_hop) {
  options_.validate();
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  // The official pad aligns prompt + first chunk to the hop, i.e. to the encoder chunk
  // when the first hop is the chunk size.
  prompt_pad_ = (tp + hop_ - 1) / hop_ * hop_ - tp;
  state_.half_kv = options_.half_state;
  if (prompt_state != nullptr && options_.incremental) {
    if (prompt_state->committed_tokens() > tp - flow.config().pre_lookahead_len)
      fail("flow stream: the prompt state commits more than the prompt decides");
    if (prompt_state->half_kv != options_.half_state)
      fail("flow stream: the prompt state's precision differs from the stream's half_state");
    state_ = flow.copy_state(*prompt_state);
  }
}

void FlowStream::push_tokens(std::span<const int32_t> tokens) {
  if (finished_) fail("flow stream: tokens pushed after finish()");
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

void FlowStream::finish() { finished_ = true; }

int64_t FlowStream::this_hop() const { return token_offset_ == 0 ? hop_ + prompt_pad_ : hop_; }

int64_t FlowStream::tokens_missing() const {
  if (done_ || finished_) return 0;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return std::max<int64_t>(0, this_hop() + flow_.config().pre_lookahead_len - have);
}

bool FlowStream::next_is_final() const {
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return finished_ && have < this_hop() + flow_.config().pre_lookahead_len;
}

FlowStream::Call FlowStream::next_call() const {
  const auto prompt = static_cast<int64_t>(prompt_tokens_.size());
  Call c;
  if (next_is_final()) {
    c.tokens = prompt + static_cast<int64_t>(tokens_.size());
    c.streaming = !options_.final_full_attention;
  } else {
    c.tokens = prompt + token_offset_ + this_hop();
    c.streaming = true;
  }
  c.past = options_.incremental && c.streaming ? state_.committed_tokens() : 0;
  return c;
}

double FlowStream::next_call_flops() const {
  if (done_) return 0;
  const Call c = next_call();
  return flow_.flops(c.tokens, c.past, c.streaming);
}

int64_t FlowStream::next_chunk_tokens() const {
  if (done_) return 0;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  return finished_ ? have : this_hop();
}

bool FlowStream::ready() const {
  if (done_) return false;
  const auto have = static_cast<int64_t>(tokens_.size()) - token_offset_;
  if (have >= this_hop() + flow_.config().pre_lookahead_len) return true;
  return finished_;  // the final chunk (it may have no frames, e.g. a stream with no tokens)
}

void FlowStream::step(const FlowModel& flow, std::span<Step> steps) {
  const int64_t la = flow.config().pre_lookahead_len, bins = flow.mel_bins();
  const int64_t ratio = flow.config().token_mel_ratio;
  struct Pending {
    Step* step;
    bool final_chunk;
    int64_t emit_from;  // first emitted frame (from the first non-prompt frame)
    std::vector<float> mel;
    int64_t first = 0;
  };
  std::vector<Pending> pending;
  std::vector<FlowRequest> requests;
  for (auto& st : steps) {
    FlowStream& s = *st.stream;
    if (!s.ready()) continue;
    const auto have = static_cast<int64_t>(s.tokens_.size()) - s.token_offset_;
    const bool final_chunk = have < s.this_hop() + la;
    if (final_chunk && have == 0) {  // nothing left to compute
      s.done_ = true;
      s.state_ = FlowStreamState{};
      continue;
    }
    pending.push_back({&st, final_chunk, s.token_offset_ * ratio, {}, 0});
  }
  requests.resize(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    FlowStream& s = *pending[i].step->stream;
    FlowRequest& r = requests[i];
    r.prompt_tokens = s.prompt_tokens_;
    r.prompt_feat = s.prompt_feat_;
    r.embedding = s.embedding_;
    r.trace = pending[i].step->trace;
    r.mel = &pending[i].mel;
    if (s.token_offset_ == 0) r.uncond_cache = s.uncond_cache_;  // used with a state only
    r.first_frame = &pending[i].first;
    if (pending[i].final_chunk) {
      r.tokens = s.tokens_;
      r.finalize = true;
      r.streaming = !s.options_.final_full_attention;
      if (s.options_.incremental && r.streaming) r.state = &s.state_;
    } else {
      r.tokens = std::span<const int32_t>(s.tokens_).first(
          static_cast<size_t>(s.token_offset_ + s.this_hop() + la));
      r.finalize = false;
      r.streaming = true;
      if (s.options_.incremental) r.state = &s.state_;
    }
  }
  for (auto& p : pending) p.step->stream->calls_.push_back(p.step->stream->next_call());
  flow.infer(requests);
  for (auto& p : pending) {
    FlowStream& s = *p.step->stream;
    const int64_t skip = p.emit_from - p.first;
    if (skip < 0 || skip * bins > static_cast<int64_t>(p.mel.size()))
      fail("flow stream: chunk output does not cover the frames to emit");
    p.step->out->insert(p.step->out->end(), p.mel.begin() + skip * bins, p.mel.end());
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
