// Speech speed by stretching the mel before the vocoder, as the official code does for
// `speed` (F.interpolate(mel, size=int(T / speed), mode="linear"), align_corners=False):
// each output frame j reads the input at x = (j + 0.5) · scale − 0.5, linearly between the
// two frames around it. Pitch is kept; only the frame rate changes.
//
// The official code does this only for a whole segment (stream=False), with scale = T /
// int(T / speed). MelStretch also works on a stream of frames: with scale = speed, each
// output frame goes out as soon as its two input frames exist, and finish() emits the rest
// up to int(T / speed) frames, so a stream needs no look-ahead beyond one frame.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cosy {

class MelStretch {
 public:
  // speed in [0.5, 2.0]: 2 halves the frames (faster speech), 0.5 doubles them.
  MelStretch(double speed, int64_t bins);

  // Appends input frames ([n, bins]); appends to `out` the output frames now computable.
  void push(std::span<const float> frames, std::vector<float>& out);
  // The input has ended: appends the remaining output frames.
  void finish(std::vector<float>& out);

  // A whole segment at once, exactly as the official code: [int(T / speed), bins].
  static std::vector<float> whole(std::span<const float> frames, int64_t bins, double speed);

 private:
  void emit(int64_t j, double scale, std::vector<float>& out) const;

  double speed_;
  int64_t bins_;
  std::vector<float> kept_;  // input frames from index kept_from_ on
  int64_t kept_from_ = 0;
  int64_t in_frames_ = 0;   // input frames seen
  int64_t out_frames_ = 0;  // output frames emitted
};

}  // namespace cosy
