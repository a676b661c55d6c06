#include "model/dit/dit_flow_stream.h"

#include <algorithm>

#include "core/error.h"
#include "model/flow/prompt_state.h"

namespace cosy {

DitFlowStream::DitFlowStream(const DitFlowModel& flow, std::span<const int32_t> prompt_tokens,
                             std::span<const float> prompt_feat, std::span<const float> embedding,
                             FlowStreamOptions options, const FlowStreamState* prompt_state)
    : flow_(flow),
      prompt_tokens_(prompt_tokens),
      prompt_feat_(prompt_feat),
      embedding_(embedding),
      options_(options),
      schedule_(options, static_cast<int64_t>(prompt_tokens.size()),
                flow.config().pre_lookahead_len) {
  state_.half_kv = options_.half_state;
  if (prompt_state != nullptr && options_.incremental) {
    check_prompt_state(*prompt_state, static_cast<int64_t>(prompt_tokens.size()),
                       flow.config().pre_lookahead_len, options_.half_state);
    state_ = flow.copy_state(*prompt_state);
  }
}

void DitFlowStream::push_tokens(std::span<const int32_t> tokens) { schedule_.push(tokens); }

void DitFlowStream::finish() { schedule_.finish(); }

double DitFlowStream::next_call_flops() const {
  if (done()) return 0;
  const FlowCall c = schedule_.next_call(state_.committed_tokens());
  return flow_.flops(c.tokens, c.past, c.streaming);
}

void DitFlowStream::step(const DitFlowModel& flow, std::span<Step> steps) {
  const int64_t bins = flow.mel_bins();
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
    const HopSchedule& h = s.schedule_;
    const bool final_chunk = h.next_is_final();
    if (final_chunk && h.emitted() == static_cast<int64_t>(h.tokens().size())) {
      s.schedule_.advance();  // no frames left: the official call would emit none
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
    const FlowCall call = s.schedule_.next_call(s.state_.committed_tokens());
    r.finalize = pending[i].final_chunk;
    r.streaming = call.streaming;
    r.tokens = s.schedule_.next_call_tokens();
    if (call.with_state) r.state = &s.state_;
  }
  flow.infer(requests);
  for (auto& p : pending) {
    DitFlowStream& s = *p.step->stream;
    // The frames past those already emitted are the chunk's.
    const int64_t skip = s.schedule_.emitted() * ratio - p.first;
    if (skip < 0) fail("dit flow stream: the flow skipped frames not yet emitted");
    const int64_t from = std::min<int64_t>(skip * bins, static_cast<int64_t>(p.mel.size()));
    p.step->out->insert(p.step->out->end(), p.mel.begin() + from, p.mel.end());
    if (p.step->first_frame != nullptr) *p.step->first_frame = p.first;
    if (p.step->computed != nullptr) *p.step->computed = std::move(p.mel);
    s.schedule_.advance();
    if (p.final_chunk) s.state_ = FlowStreamState{};  // release the caches at once
  }
}

}  // namespace cosy
