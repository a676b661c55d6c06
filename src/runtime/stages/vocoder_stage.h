// The engine's vocoder stage (mel → audio), whatever the model family: the weights
// (VocoderStage, shared read-only) and a VocoderUnit per segment (its streaming state).
// One run() is one batched vocoder call over many streams' units.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace cosy {

class VocoderUnit {
 public:
  virtual ~VocoderUnit() = default;
  virtual bool finished() const = 0;  // the final call has run
  // New mel frames a non-final call needs at least.
  virtual int64_t min_frames() const = 0;
  // Frames the next call runs over when given `new_frames` (its cost).
  virtual int64_t window_frames(int64_t new_frames, bool final) const = 0;
  // Before a call: a vocoder that draws noise starts its generator from `seed`.
  virtual void reseed(uint64_t seed) = 0;
};

struct VocoderWork {
  VocoderUnit* unit = nullptr;
  std::span<const float> mel;  // new frames, [frames, bins]
  int64_t frames = 0;
  bool finalize = false;              // no more mel: flush everything held back
  std::vector<float>* out = nullptr;  // samples that are final, appended
};

class VocoderStage {
 public:
  virtual ~VocoderStage() = default;
  // A segment's vocoder; `seed` seeds its noise where it draws any.
  virtual std::unique_ptr<VocoderUnit> open(uint64_t seed) const = 0;
  // One batched call over every unit's new mel; the units must come from open(). A request
  // the model refuses is an Error before anything is computed, so the units can be run
  // again one by one.
  virtual void run(std::span<VocoderWork> work) const = 0;
  virtual double flops(int64_t frames) const = 0;  // a call over that many frames
};

}  // namespace cosy
