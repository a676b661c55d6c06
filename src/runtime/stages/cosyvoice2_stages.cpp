#include "runtime/stages/cosyvoice2_stages.h"

#include "core/error.h"
#include "model/flow/flow_stream.h"
#include "model/hift/hift_stream.h"
#include "runtime/voice_prompt.h"

namespace cosy {
namespace {

// A segment's flow: a FlowStream when streaming, else one full call once the tokens end.
class Cv2FlowUnit final : public FlowUnit {
 public:
  Cv2FlowUnit(const FlowModel& flow, const VoicePrompt& voice, bool streaming,
              const FlowStreamOptions& options, const FlowStreamState* prompt_state,
              UncondFirstPassCache* uncond_cache)
      : flow_(flow), voice_(voice) {
    if (streaming)
      stream_ = std::make_unique<FlowStream>(flow, voice.speech, voice.feat, voice.embedding,
                                             options, prompt_state, uncond_cache);
  }

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
    if (stream_) return stream_->next_call_flops();
    return flow_.flops(prompt_tokens() + static_cast<int64_t>(tokens_.size()));
  }
  double flops_done() const override {
    if (stream_) return flow_.flops(prompt_tokens() + stream_->emitted_tokens());
    return done_ ? flow_.flops(prompt_tokens() + static_cast<int64_t>(tokens_.size())) : 0;
  }
  size_t state_bytes() const override { return stream_ ? stream_->state().bytes() : 0; }
  bool started_from_prompt_state() const override {
    return stream_ && stream_->state().committed_tokens() > 0;
  }

  FlowStream* stream() { return stream_.get(); }
  FlowRequest offline_request(std::vector<float>* out) const {
    FlowRequest r;
    r.prompt_tokens = voice_.speech;
    r.tokens = tokens_;
    r.prompt_feat = voice_.feat;
    r.embedding = voice_.embedding;
    r.mel = out;
    return r;
  }
  void offline_ran() { done_ = true; }

 private:
  int64_t prompt_tokens() const { return static_cast<int64_t>(voice_.speech.size()); }
  const FlowModel& flow_;
  const VoicePrompt& voice_;
  std::unique_ptr<FlowStream> stream_;
  std::vector<int32_t> tokens_;  // offline only
  bool finished_ = false, done_ = false;
};

class Cv2VocoderUnit final : public VocoderUnit {
 public:
  Cv2VocoderUnit(const HiftVocoder& vocoder, uint64_t seed) : stream_(vocoder, seed) {}
  bool finished() const override { return stream_.finished(); }
  int64_t min_frames() const override { return stream_.cache_frames(); }
  int64_t window_frames(int64_t new_frames, bool /*final*/) const override {
    return new_frames + (calls_ > 0 ? stream_.cache_frames() : 0);
  }
  void reseed(uint64_t seed) override { stream_.generator().manual_seed(seed); }
  HiftStream& stream() { return stream_; }
  void ran() { ++calls_; }

 private:
  HiftStream stream_;
  int64_t calls_ = 0;
};

}  // namespace

Cv2FlowStage::Cv2FlowStage(Backend& backend, const FlowConfig& config, const StateDict& weights,
                           WeightFormat format)
    : model_(backend, config, weights, format) {}

std::unique_ptr<FlowUnit> Cv2FlowStage::open(const VoicePrompt& voice, bool streaming,
                                             const FlowStreamOptions& options,
                                             const FlowStreamState* prompt_state,
                                             UncondFirstPassCache* uncond_cache) const {
  return std::make_unique<Cv2FlowUnit>(model_, voice, streaming, options, prompt_state,
                                       uncond_cache);
}

std::shared_ptr<const FlowStreamState> Cv2FlowStage::prompt_state(const VoicePrompt& voice,
                                                                  bool half_state) const {
  return std::make_shared<const FlowStreamState>(
      model_.prompt_state(voice.speech, voice.feat, voice.embedding, half_state));
}

void Cv2FlowStage::run(std::span<FlowWork> work) const {
  std::vector<FlowStream::Step> steps;
  std::vector<FlowRequest> requests;
  std::vector<Cv2FlowUnit*> offline;
  for (FlowWork& w : work) {
    auto& unit = static_cast<Cv2FlowUnit&>(*w.unit);
    if (!unit.ready()) continue;
    if (unit.stream() != nullptr) {
      steps.push_back({unit.stream(), w.out, nullptr});
    } else {
      requests.push_back(unit.offline_request(w.out));
      offline.push_back(&unit);
    }
  }
  // The whole-segment calls first: once they ran, a failing streaming call retried
  // stream by stream does not run them again.
  if (!requests.empty()) {
    model_.infer(requests);
    for (Cv2FlowUnit* u : offline) u->offline_ran();
  }
  if (!steps.empty()) FlowStream::step(model_, steps);
}

Cv2VocoderStage::Cv2VocoderStage(Backend& backend, const HiftConfig& config,
                                 const StateDict& weights, WeightFormat format)
    : model_(backend, config, weights, format) {}

std::unique_ptr<VocoderUnit> Cv2VocoderStage::open(uint64_t seed) const {
  return std::make_unique<Cv2VocoderUnit>(model_, seed);
}

void Cv2VocoderStage::run(std::span<VocoderWork> work) const {
  std::vector<HiftStream::Step> steps;
  std::vector<Cv2VocoderUnit*> units;
  for (VocoderWork& w : work) {
    auto& unit = static_cast<Cv2VocoderUnit&>(*w.unit);
    HiftStream::Step st;
    st.stream = &unit.stream();
    st.mel = w.mel;
    st.frames = w.frames;
    st.finalize = w.finalize;
    st.out = w.out;
    steps.push_back(st);
    units.push_back(&unit);
  }
  HiftStream::step(model_, steps);
  for (Cv2VocoderUnit* u : units) u->ran();
}

}  // namespace cosy
