#include "runtime/stages/cosyvoice3_stages.h"

#include "core/error.h"
#include "model/dit/dit_flow_stream.h"
#include "model/hift/causal_hift_stream.h"
#include "runtime/voice_prompt.h"

namespace cosy {
namespace {

// A segment's flow: a DitFlowStream when streaming, else one full-attention call once the
// tokens end.
class Cv3FlowUnit final : public FlowUnit {
 public:
  Cv3FlowUnit(const DitFlowModel& flow, const VoicePrompt& voice, bool streaming,
              const FlowStreamOptions& options)
      : flow_(flow), voice_(voice) {
    if (streaming)
      stream_ =
          std::make_unique<DitFlowStream>(flow, voice.speech, voice.feat, voice.embedding, options);
  }

  void push_tokens(std::span<const int32_t> tokens) override {
    if (stream_) stream_->push_tokens(tokens);
    tokens_ += static_cast<int64_t>(tokens.size());
    if (!stream_) offline_tokens_.insert(offline_tokens_.end(), tokens.begin(), tokens.end());
  }
  void finish() override {
    if (stream_) stream_->finish();
    finished_ = true;
  }
  bool ready() const override {
    return stream_ ? stream_->ready() : finished_ && !done_ && tokens_ > 0;
  }
  bool done() const override {
    return stream_ ? stream_->done() : done_ || (finished_ && tokens_ == 0);
  }
  int64_t tokens_missing() const override { return stream_ ? stream_->tokens_missing() : 0; }
  double next_call_flops() const override {
    return stream_ ? stream_->next_call_flops() : flow_.flops(prompt_tokens() + tokens_);
  }
  double flops_done() const override {
    if (stream_) return flow_.flops(prompt_tokens() + stream_->emitted_tokens());
    return done_ ? flow_.flops(prompt_tokens() + tokens_) : 0;
  }
  size_t state_bytes() const override { return stream_ ? stream_->state().bytes() : 0; }

  DitFlowStream* stream() { return stream_.get(); }
  DitFlowRequest offline_request(std::vector<float>* out) const {
    DitFlowRequest r;
    r.prompt_tokens = voice_.speech;
    r.tokens = offline_tokens_;
    r.prompt_feat = voice_.feat;
    r.embedding = voice_.embedding;
    r.mel = out;
    return r;
  }
  void offline_ran() { done_ = true; }

 private:
  int64_t prompt_tokens() const { return static_cast<int64_t>(voice_.speech.size()); }
  const DitFlowModel& flow_;
  const VoicePrompt& voice_;
  std::unique_ptr<DitFlowStream> stream_;
  std::vector<int32_t> offline_tokens_;
  int64_t tokens_ = 0;
  bool finished_ = false, done_ = false;
};

class Cv3VocoderUnit final : public VocoderUnit {
 public:
  explicit Cv3VocoderUnit(const CausalHiftVocoder& vocoder) : stream_(vocoder) {}
  bool finished() const override { return stream_.finished(); }
  int64_t min_frames() const override { return 1; }
  int64_t window_frames(int64_t new_frames, bool final) const override {
    return stream_.window_frames(new_frames, final);
  }
  void reseed(uint64_t /*seed*/) override {}  // the source buffers are fixed: nothing drawn
  CausalHiftStream& stream() { return stream_; }

 private:
  CausalHiftStream stream_;
};

}  // namespace

Cv3FlowStage::Cv3FlowStage(Backend& backend, const FlowConfig& config, const StateDict& weights,
                           WeightFormat format)
    : model_(backend, config, weights, format) {}

std::unique_ptr<FlowUnit> Cv3FlowStage::open(const VoicePrompt& voice, bool streaming,
                                             const FlowStreamOptions& options,
                                             const FlowStreamState* /*prompt_state*/,
                                             UncondFirstPassCache* /*uncond_cache*/) const {
  return std::make_unique<Cv3FlowUnit>(model_, voice, streaming, options);
}

void Cv3FlowStage::run(std::span<FlowWork> work) const {
  std::vector<DitFlowStream::Step> steps;
  std::vector<DitFlowRequest> requests;
  std::vector<Cv3FlowUnit*> offline;
  for (FlowWork& w : work) {
    auto& unit = static_cast<Cv3FlowUnit&>(*w.unit);
    if (!unit.ready()) continue;
    if (unit.stream() != nullptr) {
      steps.push_back({unit.stream(), w.out, nullptr, nullptr});
    } else {
      requests.push_back(unit.offline_request(w.out));
      offline.push_back(&unit);
    }
  }
  // As for CosyVoice2: the whole-segment calls first, so a retry does not repeat them.
  if (!requests.empty()) {
    model_.infer(requests);
    for (Cv3FlowUnit* u : offline) u->offline_ran();
  }
  if (!steps.empty()) DitFlowStream::step(model_, steps);
}

Cv3VocoderStage::Cv3VocoderStage(Backend& backend, const HiftConfig& config,
                                 const StateDict& weights, int64_t noise_offset,
                                 WeightFormat format)
    : model_(backend, config, weights, noise_offset, format) {}

std::unique_ptr<VocoderUnit> Cv3VocoderStage::open(uint64_t /*seed*/) const {
  return std::make_unique<Cv3VocoderUnit>(model_);
}

void Cv3VocoderStage::run(std::span<VocoderWork> work) const {
  std::vector<CausalHiftStream::Step> steps;
  for (VocoderWork& w : work) {
    auto& unit = static_cast<Cv3VocoderUnit&>(*w.unit);
    steps.push_back({&unit.stream(), w.mel, w.finalize, w.out});
  }
  CausalHiftStream::step(model_, steps);
}

}  // namespace cosy
