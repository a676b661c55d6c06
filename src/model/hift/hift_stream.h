// Streaming vocoding as CosyVoice2Model.token2wav does it, with the state per stream:
//  - the last 8 mel frames are prepended to the next chunk's mel;
//  - the last 3840 source samples overwrite the start of the next chunk's source;
//  - a chunk's first 3840 samples are cross-faded (Hamming, 7680 long) with the previous
//    chunk's held-back tail;
//  - until the final chunk, the last 3840 samples are held back.
// Many streams at different positions step together in one batched vocoder call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/torch_generator.h"
#include "model/hift/hift.h"

namespace cosy {

class HiftStream {
 public:
  HiftStream(const HiftVocoder& vocoder, uint64_t seed);

  // The stream's generator; reseed it to reproduce a run seeded per call.
  TorchGenerator& generator() { return rng_; }
  bool finished() const { return finished_; }
  int64_t cache_frames() const { return cache_frames_; }
  int64_t cache_samples() const { return cache_samples_; }
  // Bytes of per-stream state (caches), for memory accounting.
  size_t state_bytes() const;

  struct Step {
    HiftStream* stream = nullptr;
    std::span<const float> mel;  // new frames [frames, 80]
    int64_t frames = 0;
    bool finalize = false;
    std::vector<float>* out = nullptr;  // samples that are final, appended
    // Optional, for tests: what the vocoder was given and returned.
    std::vector<float>* hift_mel = nullptr;
    std::vector<float>* cache_source = nullptr;
    std::vector<float>* raw_speech = nullptr;
  };
  // Advances every step's stream by one chunk in one batched vocoder call.
  static void step(const HiftVocoder& vocoder, std::span<Step> steps);

  // The half of a step after the vocoder: given what it was fed (`hift_mel`) and what it
  // returned (`speech`, `source`), cross-fades, keeps the caches and appends the final
  // samples to `out`. step() uses it; tests drive it with the official vocoder output.
  void absorb(const std::vector<float>& hift_mel, const std::vector<float>& source,
              std::vector<float> speech, bool finalize, std::vector<float>& out);

 private:
  int64_t cache_frames_, cache_samples_, channels_;
  TorchGenerator rng_;
  std::vector<float> mel_cache_, source_cache_, speech_tail_;
  bool has_cache_ = false;
  bool finished_ = false;
};

// CosyVoice's fade_in_out: head[i] = head[i] * w[i] + prev_tail[i] * w[n + i] for the
// first n = prev_tail.size() samples, w = numpy.hamming(2n), in double as numpy does.
void hamming_crossfade(std::span<float> head, std::span<const float> prev_tail);

}  // namespace cosy
