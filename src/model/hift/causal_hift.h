// CosyVoice3's CausalHiFTGenerator inference (mel → 24 kHz waveform), reproducing the
// official numerics:
//   - the F0 predictor (CausalConvRNNF0Predictor) in float64, as the official code runs it:
//     a conv with 3 frames of right look-ahead, 4 left-causal convs, ELUs, a linear, |.|;
//   - the causal sine source with the fixed construction-time buffers (no draws);
//   - conv_pre with conv_pre_look_right frames of look-ahead, nearest-upsampling causal
//     convs, causal source downsampling, left-causal Snake ResBlocks, conv_post, iSTFT.
// finalize: the look-ahead frames are zeros and every mel frame makes audio (480 per frame).
// Not final: the last 3 mel frames are look-ahead for the F0, the 4 before them for conv_pre,
// and the last frame's audio is held back: 480 × (T - 8) samples, equal to the first samples
// of a final call on the same mel up to float rounding.
// Weights and the fixed buffers are shared, read-only, by any number of streams.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"

namespace cosy {

struct CausalHiftTrace {
  std::vector<float> f0;          // [F0 frames]
  std::vector<float> sine_waves;  // [L, harmonics]
  std::vector<float> uv;          // [L]
  std::vector<float> source;      // [L]
  std::vector<float> stft_real;   // [1 + L / hop, n_fft/2+1], before a non-final cut
  std::vector<float> stft_imag;
  std::vector<float> conv_pre_out;   // [frames, base_channels]
  std::vector<float> conv_post_out;  // [stft frames, n_fft+2]
  std::vector<float> istft_out;      // before the non-final trim and the clamp
};

struct CausalHiftRequest {
  std::span<const float> mel;  // [frames, in_channels]
  int64_t frames = 0;
  bool finalize = true;
  std::vector<float>* speech = nullptr;  // out
  CausalHiftTrace* trace = nullptr;      // out (optional)

  // A window of a stream (CausalHiftStream): the first f0_context frames feed only the F0
  // predictor's left context (their F0 and audio are not made); the rest start at stream
  // sample first_sample (the fixed noise's row), with each harmonic's cumulative phase
  // phase_start before them (empty: the stream's start). phase_cum (optional) receives the
  // cumulative phase after each frame that makes audio, [frames, harmonics].
  int64_t f0_context = 0;
  int64_t first_sample = 0;
  std::span<const double> phase_start;
  std::vector<double>* phase_cum = nullptr;
};

class CausalHiftVocoder {
 public:
  // `noise_offset`: causal_hift_noise_offset(model config), where the fixed buffers start.
  CausalHiftVocoder(Backend& backend, const HiftConfig& config, const StateDict& weights,
                    int64_t noise_offset, WeightFormat format = WeightFormat::F32);
  ~CausalHiftVocoder();
  CausalHiftVocoder(const CausalHiftVocoder&) = delete;
  CausalHiftVocoder& operator=(const CausalHiftVocoder&) = delete;

  const HiftConfig& config() const { return config_; }
  int64_t samples_per_frame() const { return config_.samples_per_frame(); }
  // Mel frames a non-final call holds back (look-ahead and the held-back frame): 8.
  int64_t held_back_frames() const;
  // Frames of left context the F0 predictor needs for an exact F0 (its causal convs): 8.
  int64_t f0_context_frames() const;
  // Frames of mel before a sample's own frame that can change it through the decoder (its
  // causal convs, the source's STFT, the iSTFT), rounded up: a window that starts this far
  // back gives that sample as the whole utterance's call does.
  int64_t decoder_context_frames() const;
  // The fixed buffers' first rows (tests; rand_ini then the sine noise).
  std::span<const float> rand_ini() const;
  std::span<const float> source_noise(int64_t samples) const;

  // An Error (nothing computed) for a wrong mel size, too few frames for a non-final call,
  // or a NaN/Inf in the mel.
  void vocode(std::span<CausalHiftRequest> batch) const;
  // The work of a call over `frames` mel frames (the F0 predictor's double-precision convs
  // counted like the rest).
  double flops(int64_t frames) const;

 private:
  struct Weights;
  void check(const CausalHiftRequest& r) const;
  std::vector<float> predict_f0(std::span<const float> mel, int64_t frames, bool finalize) const;

  Backend& backend_;
  HiftConfig config_;
  std::unique_ptr<Weights> w_;
};

}  // namespace cosy
