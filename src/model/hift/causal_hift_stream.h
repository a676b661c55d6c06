// One stream's CosyVoice3 vocoder, incremental. The official code re-runs the vocoder over
// all the mel so far at every chunk (its cost grows with the square of the utterance); a
// causal vocoder's samples depend only on the frames within its receptive field behind them
// (CausalHiftVocoder::decoder_context_frames) and its look-ahead ahead, and on each sine's
// cumulative phase, which the stream carries from window to window exactly (the same double
// sums). So each call runs over its new frames plus that context, and gives the samples the
// whole-mel call gives there (to float rounding).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/hift/causal_hift.h"

namespace cosy {

class CausalHiftStream {
 public:
  explicit CausalHiftStream(const CausalHiftVocoder& hift);

  // Appends mel frames ([frames, in_channels]); returns the samples that can go out now:
  // all but the held-back frames' (CausalHiftVocoder::held_back_frames), or with `final`
  // all the rest.
  std::vector<float> push(std::span<const float> mel, bool final);

  // Many streams' pushes in one batched vocoder call; each step's samples are appended to
  // its `out`.
  struct Step {
    CausalHiftStream* stream = nullptr;
    std::span<const float> mel;  // new frames, [frames, in_channels]
    bool final = false;
    std::vector<float>* out = nullptr;
  };
  static void step(const CausalHiftVocoder& hift, std::span<Step> steps);
  // Frames the next push of `new_frames` frames runs the vocoder over (its cost).
  int64_t window_frames(int64_t new_frames, bool final) const;
  bool finished() const { return done_; }
  size_t state_bytes() const { return mel_.size() * sizeof(float) + cum_.size() * sizeof(double); }

  int64_t frames() const { return mel_first_ + rows(); }  // mel frames pushed
  int64_t samples_sent() const { return sent_frames_ * hift_.samples_per_frame(); }
  int64_t last_window_frames() const { return last_window_; }  // what the last call ran over

 private:
  int64_t rows() const;
  // The two halves of a push around the vocoder call: the window's request (false when
  // no samples can go out yet), and what its output leaves for the stream and the caller.
  struct Window {
    size_t mel_values = 0;  // before the push: what a failed call restores
    bool was_done = false;
    int64_t end = 0, d0 = 0, w0 = 0;
    std::vector<double> start, cum;
    std::vector<float> speech;
  };
  bool prepare(std::span<const float> mel, bool final, Window& w, CausalHiftRequest& r);
  void absorb(Window& w, std::vector<float>& out);
  const CausalHiftVocoder& hift_;
  std::vector<float> mel_;  // frames [mel_first_, frames()) still needed as context
  int64_t mel_first_ = 0;
  int64_t sent_frames_ = 0;  // frames whose samples went out
  std::vector<double> cum_;  // per frame from cum_first_: each harmonic's phase after it
  int64_t cum_first_ = 0;
  int64_t last_window_ = 0;
  bool done_ = false;
};

}  // namespace cosy
