// CosyVoice2's HiFTGenerator inference (mel → 24 kHz waveform), reproducing the official
// numerics: ConvRNNF0Predictor → SineGen2 + SourceModuleHnNSF → STFT of the source →
// conv_pre → upsampling with source fusion and Snake ResBlocks → conv_post → iSTFT → clamp.
//
// HiftVocoder holds the prepared weights (shared, read-only, any number of streams). Every
// call takes a batch of independent requests and runs each conv once over all of them.
// Activations are channels-last ([frames, channels]); the fixtures' (1, 80, T) mel is the
// transpose.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "core/torch_generator.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"

namespace cosy {

// Intermediates a test can ask for (all channels-last).
struct HiftTrace {
  std::vector<float> f0;          // [T]
  std::vector<float> sine_waves;  // [480T, harmonics+1]
  std::vector<float> uv;          // [480T]
  std::vector<float> source;      // [480T] after the cache_source overwrite
  std::vector<float> stft_real;   // [frames, n_fft/2+1]
  std::vector<float> stft_imag;
  std::vector<float> conv_pre_out;   // [T, base_channels]
  std::vector<float> conv_post_out;  // [frames, n_fft+2]
  std::vector<float> istft_out;      // [480T] before the clamp
};

struct HiftRequest {
  std::span<const float> mel;  // [frames, in_channels]
  int64_t frames = 0;
  TorchGenerator* rng = nullptr;        // the request's own generator (draws as torch does)
  std::span<const float> cache_source;  // overwrites the start of the source (streaming)
  // Replaces the predicted F0 (one value per mel frame, finite and >= 0): drive the source
  // from a given pitch contour, e.g. to test the sine path apart from the F0 predictor.
  std::span<const float> injected_f0;
  // Replaces the computed source entirely (frames * samples_per_frame values): decode a
  // given excitation, e.g. to test the decoder apart from the F0/sine path.
  std::span<const float> injected_source;
  std::vector<float>* speech = nullptr;  // out: frames * samples_per_frame samples
  std::vector<float>* source = nullptr;  // out (optional): the source signal used
  HiftTrace* trace = nullptr;            // out (optional)
};

class HiftVocoder {
 public:
  HiftVocoder(Backend& backend, const HiftConfig& config, const StateDict& weights,
              WeightFormat format = WeightFormat::F32);
  ~HiftVocoder();
  HiftVocoder(const HiftVocoder&) = delete;
  HiftVocoder& operator=(const HiftVocoder&) = delete;

  const HiftConfig& config() const { return config_; }
  int64_t samples_per_frame() const { return config_.samples_per_frame(); }

  // Vocodes every request in one batched pass. Inputs are checked first: a wrong mel size,
  // no frames, or a NaN/Inf in the mel is an Error and nothing is computed.
  void vocode(std::span<HiftRequest> batch) const;

  // One request, fresh output.
  std::vector<float> vocode(std::span<const float> mel, int64_t frames, TorchGenerator& rng) const;

  // Floating-point operations of one call on `frames` mel frames (for benchmarks).
  double flops(int64_t frames) const;
  size_t weight_bytes() const;

 private:
  struct Weights;
  struct Workspaces;
  void check(const HiftRequest& r) const;

  Backend& backend_;
  HiftConfig config_;
  std::unique_ptr<Weights> w_;
  std::unique_ptr<Workspaces> workspaces_;  // activation buffers reused across calls
};

}  // namespace cosy
