// A segment's flow for either family, as the stages open it: the family's stream (its
// chunk schedule and state) when streaming, else one full call over all the tokens once
// they end. `Model` is FlowModel or DitFlowModel, `Stream` its stream class, `Request` its
// request; run_segment_flows() batches many segments' calls.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "runtime/stages/flow_stage.h"
#include "runtime/voice_prompt.h"

namespace cosy {

template <typename Model, typename Stream, typename Request>
class SegmentFlow final : public FlowUnit {
 public:
  // `stream` null: not streaming.
  SegmentFlow(const Model& flow, const VoicePrompt& voice, std::unique_ptr<Stream> stream)
      : flow_(flow), voice_(voice), stream_(std::move(stream)) {}

  void push_tokens(std::span<const int32_t> tokens) override {
    if (stream_) {
      stream_->push_tokens(tokens);
    } else {
      tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    }
  }
  void finish() override {
    if (stream_) stream_->finish();
    finished_ = true;
  }
  bool ready() const override {
    return stream_ ? stream_->ready() : finished_ && !done_ && !tokens_.empty();
  }
  bool done() const override {
    return stream_ ? stream_->done() : done_ || (finished_ && tokens_.empty());
  }
  int64_t tokens_missing() const override { return stream_ ? stream_->tokens_missing() : 0; }
  double next_call_flops() const override {
    return stream_ ? stream_->next_call_flops() : flow_.flops(prompt_tokens() + whole());
  }
  double flops_done() const override {
    if (stream_) return flow_.flops(prompt_tokens() + stream_->emitted_tokens());
    return done_ ? flow_.flops(prompt_tokens() + whole()) : 0;
  }
  size_t state_bytes() const override { return stream_ ? stream_->state().bytes() : 0; }
  bool started_from_prompt_state() const override {
    return stream_ && stream_->state().committed_tokens() > 0;
  }

  Stream* stream() { return stream_.get(); }
  Request whole_request(std::vector<float>* out) const {
    Request r;
    r.prompt_tokens = voice_.speech;
    r.tokens = tokens_;
    r.prompt_feat = voice_.feat;
    r.embedding = voice_.embedding;
    r.mel = out;
    return r;
  }
  void whole_ran() { done_ = true; }

 private:
  int64_t prompt_tokens() const { return static_cast<int64_t>(voice_.speech.size()); }
  int64_t whole() const { return static_cast<int64_t>(tokens_.size()); }
  const Model& flow_;
  const VoicePrompt& voice_;
  std::unique_ptr<Stream> stream_;
  std::vector<int32_t> tokens_;  // not streaming: every token, for the one call
  bool finished_ = false, done_ = false;
};

// One batched flow call over the ready units (all opened by the same stage as
// SegmentFlow<Model, Stream, Request>): the whole-segment calls first, so that once they
// ran, a failing streaming call retried unit by unit does not run them again.
template <typename Model, typename Stream, typename Request>
void run_segment_flows(const Model& flow, std::span<FlowWork> work) {
  using Unit = SegmentFlow<Model, Stream, Request>;
  std::vector<typename Stream::Step> steps;
  std::vector<Request> requests;
  std::vector<Unit*> whole;
  for (FlowWork& w : work) {
    auto& unit = static_cast<Unit&>(*w.unit);
    if (!unit.ready()) continue;
    if (unit.stream() != nullptr) {
      typename Stream::Step st;
      st.stream = unit.stream();
      st.out = w.out;
      steps.push_back(st);
    } else {
      requests.push_back(unit.whole_request(w.out));
      whole.push_back(&unit);
    }
  }
  if (!requests.empty()) {
    flow.infer(requests);
    for (Unit* u : whole) u->whole_ran();
  }
  if (!steps.empty()) Stream::step(flow, steps);
}

}  // namespace cosy
