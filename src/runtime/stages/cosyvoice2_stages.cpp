#include "runtime/stages/cosyvoice2_stages.h"

#include "core/error.h"
#include "model/flow/flow_stream.h"
#include "model/hift/hift_stream.h"
#include "runtime/stages/segment_flow.h"
#include "runtime/voice_prompt.h"

namespace cosy {
namespace {

using Cv2FlowUnit = SegmentFlow<FlowModel, FlowStream, FlowRequest>;

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
  return std::make_unique<Cv2FlowUnit>(
      model_, voice,
      streaming ? std::make_unique<FlowStream>(model_, voice.speech, voice.feat, voice.embedding,
                                               options, prompt_state, uncond_cache)
                : nullptr);
}

std::shared_ptr<const FlowStreamState> Cv2FlowStage::prompt_state(const VoicePrompt& voice,
                                                                  bool half_state) const {
  return std::make_shared<const FlowStreamState>(
      model_.prompt_state(voice.speech, voice.feat, voice.embedding, half_state));
}

void Cv2FlowStage::run(std::span<FlowWork> work) const {
  run_segment_flows<FlowModel, FlowStream, FlowRequest>(model_, work);
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
