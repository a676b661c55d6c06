#include "model/flow/flow_stream.h"

#include <algorithm>

#include "core/error.h"
#include "model/flow/prompt_state.h"

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
      schedule_(options, static_cast<int64_t>(prompt_tokens.size()),
                flow.config().pre_lookahead_len),
      uncond_cache_(uncond_cache) {
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  state_.half_kv = options_.half_state;
  if (prompt_state != nullptr && options_.incremental) {
    check_prompt_state(*prompt_state, tp, flow.config().pre_lookahead_len, options_.half_state);
    state_ = flow.copy_state(*prompt_state);
  }
}

void FlowStream::push_tokens(std::span<const int32_t> tokens) { schedule_.push(tokens); }

void FlowStream::finish() { schedule_.finish(); }

double FlowStream::next_call_flops() const {
  if (done()) return 0;
  const FlowCall c = schedule_.next_call(state_.committed_tokens());
  return flow_.flops(c.tokens, c.past, c.streaming);
}

void FlowStream::step(const FlowModel& flow, std::span<Step> steps) {
  const int64_t bins = flow.mel_bins();
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
    const HopSchedule& h = s.schedule_;
    const bool final_chunk = h.next_is_final();
    if (final_chunk && h.emitted() == static_cast<int64_t>(h.tokens().size())) {
      s.schedule_.advance();  // nothing left to compute
      s.state_ = FlowStreamState{};
      continue;
    }
    pending.push_back({&st, final_chunk, h.emitted() * ratio, {}, 0});
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
    if (s.schedule_.emitted() == 0) r.uncond_cache = s.uncond_cache_;  // used with a state only
    r.first_frame = &pending[i].first;
    const FlowCall call = s.schedule_.next_call(s.state_.committed_tokens());
    r.tokens = s.schedule_.next_call_tokens();
    r.finalize = pending[i].final_chunk;
    r.streaming = call.streaming;
    if (call.with_state) r.state = &s.state_;
    s.calls_.push_back(call);
  }
  flow.infer(requests);
  for (auto& p : pending) {
    FlowStream& s = *p.step->stream;
    const int64_t skip = p.emit_from - p.first;
    if (skip < 0 || skip * bins > static_cast<int64_t>(p.mel.size()))
      fail("flow stream: chunk output does not cover the frames to emit");
    p.step->out->insert(p.step->out->end(), p.mel.begin() + skip * bins, p.mel.end());
    s.schedule_.advance();
    if (p.final_chunk) s.state_ = FlowStreamState{};  // release the caches at once
  }
}

}  // namespace cosy
