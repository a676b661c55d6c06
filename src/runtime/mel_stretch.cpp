#include "runtime/mel_stretch.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy {

namespace {

// PyTorch's source index for linear interpolation with align_corners=False.
double source_index(int64_t j, double scale) {
  return std::max(0.0, (static_cast<double>(j) + 0.5) * scale - 0.5);
}

}  // namespace

MelStretch::MelStretch(double speed, int64_t bins) : speed_(speed), bins_(bins) {
  if (!(speed >= 0.5 && speed <= 2.0)) fail("speed must be between 0.5 and 2.0, got ", speed);
  if (bins <= 0) fail("mel stretch: bins must be positive");
}

void MelStretch::emit(int64_t j, double scale, std::vector<float>& out) const {
  const double x = source_index(j, scale);
  const int64_t last = in_frames_ - 1;
  const auto i0 = std::min(static_cast<int64_t>(std::floor(x)), last);
  const int64_t i1 = std::min(i0 + 1, last);
  const auto w = static_cast<float>(x - static_cast<double>(i0));
  const float* a = &kept_[static_cast<size_t>((i0 - kept_from_) * bins_)];
  const float* b = &kept_[static_cast<size_t>((i1 - kept_from_) * bins_)];
  for (int64_t k = 0; k < bins_; ++k) out.push_back(a[k] + (b[k] - a[k]) * w);
}

void MelStretch::push(std::span<const float> frames, std::vector<float>& out) {
  if (frames.size() % static_cast<size_t>(bins_) != 0) fail("mel stretch: not whole frames");
  kept_.insert(kept_.end(), frames.begin(), frames.end());
  in_frames_ += static_cast<int64_t>(frames.size()) / bins_;
  // Output frame j needs input frames floor(x) and floor(x) + 1.
  for (;;) {
    const double x = source_index(out_frames_, speed_);
    if (static_cast<int64_t>(std::floor(x)) + 1 >= in_frames_) break;
    emit(out_frames_++, speed_, out);
  }
  // Drop input frames no later output frame reads.
  const auto keep = static_cast<int64_t>(std::floor(source_index(out_frames_, speed_)));
  if (keep > kept_from_) {
    kept_.erase(kept_.begin(), kept_.begin() + (keep - kept_from_) * bins_);
    kept_from_ = keep;
  }
}

void MelStretch::finish(std::vector<float>& out) {
  if (in_frames_ == 0) return;
  const auto total = static_cast<int64_t>(static_cast<double>(in_frames_) / speed_);
  while (out_frames_ < total) emit(out_frames_++, speed_, out);
}

std::vector<float> MelStretch::whole(std::span<const float> frames, int64_t bins, double speed) {
  MelStretch s(speed, bins);
  s.kept_.assign(frames.begin(), frames.end());
  s.in_frames_ = static_cast<int64_t>(frames.size()) / bins;
  std::vector<float> out;
  const auto total = static_cast<int64_t>(static_cast<double>(s.in_frames_) / speed);
  if (total <= 0) return out;
  const double scale = static_cast<double>(s.in_frames_) / static_cast<double>(total);
  for (int64_t j = 0; j < total; ++j) s.emit(j, scale, out);
  return out;
}

}  // namespace cosy
