#include "model/hift/hift_stream.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace cosy {

namespace {
constexpr int64_t kMelCacheFrames = 8;  // CosyVoice2Model.mel_cache_len
}  // namespace

HiftStream::HiftStream(const HiftVocoder& vocoder, uint64_t seed)
    : cache_frames_(kMelCacheFrames),
      cache_samples_(kMelCacheFrames * vocoder.samples_per_frame()),
      channels_(vocoder.config().in_channels),
      rng_(seed) {}

size_t HiftStream::state_bytes() const {
  return (mel_cache_.capacity() + source_cache_.capacity() + speech_tail_.capacity()) *
             sizeof(float) +
         sizeof(*this);
}

void hamming_crossfade(std::span<float> head, std::span<const float> prev_tail) {
  const size_t n = prev_tail.size();
  if (head.size() < n)
    fail("crossfade: chunk shorter (", head.size(), ") than the overlap (", n, ")");
  const double m = static_cast<double>(2 * n - 1);
  for (size_t i = 0; i < n; ++i) {
    const double w_in = 0.54 - 0.46 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) / m);
    const double w_out =
        0.54 - 0.46 * std::cos(2.0 * std::numbers::pi * static_cast<double>(n + i) / m);
    head[i] = static_cast<float>(static_cast<double>(head[i]) * w_in +
                                 static_cast<double>(prev_tail[i]) * w_out);
  }
}

void HiftStream::step(const HiftVocoder& vocoder, std::span<Step> steps) {
  std::vector<std::vector<float>> mels(steps.size()), speech(steps.size()), source(steps.size());
  std::vector<HiftRequest> requests(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    HiftStream& st = *s.stream;
    if (st.finished_) fail("hift stream: a chunk arrived after the final one");
    if (static_cast<int64_t>(s.mel.size()) != s.frames * st.channels_) {
      fail("hift stream: the mel has ", s.mel.size(), " values, expected ", s.frames, " x ",
           st.channels_);
    }
    std::vector<float>& mel = mels[i];
    mel = st.mel_cache_;
    mel.insert(mel.end(), s.mel.begin(), s.mel.end());
    const auto frames = static_cast<int64_t>(mel.size()) / st.channels_;
    if (!s.finalize && frames < st.cache_frames_) {
      fail("hift stream: a non-final chunk needs at least ", st.cache_frames_, " mel frames, got ",
           frames);
    }
    HiftRequest& r = requests[i];
    r.mel = mel;
    r.frames = frames;
    r.rng = &st.rng_;
    r.cache_source = st.source_cache_;
    r.speech = &speech[i];
    r.source = &source[i];
    if (s.hift_mel != nullptr) *s.hift_mel = mel;
    if (s.cache_source != nullptr) *s.cache_source = st.source_cache_;
  }
  vocoder.vocode(requests);
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    if (s.raw_speech != nullptr) *s.raw_speech = speech[i];
    s.stream->absorb(mels[i], source[i], std::move(speech[i]), s.finalize, *s.out);
  }
}

void HiftStream::absorb(const std::vector<float>& hift_mel, const std::vector<float>& source,
                        std::vector<float> speech, bool finalize, std::vector<float>& out) {
  if (has_cache_) hamming_crossfade(speech, speech_tail_);
  if (finalize) {
    out.insert(out.end(), speech.begin(), speech.end());
    finished_ = true;
    mel_cache_.clear();
    source_cache_.clear();
    speech_tail_.clear();
    return;
  }
  const auto keep = static_cast<std::ptrdiff_t>(cache_samples_);
  if (static_cast<int64_t>(hift_mel.size()) < cache_frames_ * channels_ ||
      static_cast<std::ptrdiff_t>(source.size()) < keep ||
      static_cast<std::ptrdiff_t>(speech.size()) < keep) {
    fail("hift stream: a non-final chunk is shorter than the caches");
  }
  mel_cache_.assign(hift_mel.end() - cache_frames_ * channels_, hift_mel.end());
  source_cache_.assign(source.end() - keep, source.end());
  speech_tail_.assign(speech.end() - keep, speech.end());
  out.insert(out.end(), speech.begin(), speech.end() - keep);
  has_cache_ = true;
}

}  // namespace cosy
