#include "runtime/stages/cosyvoice3_stages.h"

#include "core/error.h"
#include "model/dit/dit_flow_stream.h"
#include "model/hift/causal_hift_stream.h"
#include "runtime/stages/segment_flow.h"
#include "runtime/voice_prompt.h"

namespace cosy {
namespace {

using Cv3FlowUnit = SegmentFlow<DitFlowModel, DitFlowStream, DitFlowRequest>;

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
                                             const FlowStreamState* prompt_state,
                                             UncondFirstPassCache* /*uncond_cache*/) const {
  return std::make_unique<Cv3FlowUnit>(
      model_, voice,
      streaming ? std::make_unique<DitFlowStream>(model_, voice.speech, voice.feat, voice.embedding,
                                                  options, prompt_state)
                : nullptr);
}

std::shared_ptr<const FlowStreamState> Cv3FlowStage::prompt_state(const VoicePrompt& voice,
                                                                  bool half_state) const {
  return std::make_shared<const FlowStreamState>(
      model_.prompt_state(voice.speech, voice.feat, voice.embedding, half_state));
}

void Cv3FlowStage::run(std::span<FlowWork> work) const {
  run_segment_flows<DitFlowModel, DitFlowStream, DitFlowRequest>(model_, work);
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
