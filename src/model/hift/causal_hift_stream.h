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

  int64_t frames() const { return mel_first_ + rows(); }  // mel frames pushed
  int64_t samples_sent() const { return sent_frames_ * hift_.samples_per_frame(); }
  int64_t last_window_frames() const { return last_window_; }  // what the last call ran over

 private:
  int64_t rows() const;
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
