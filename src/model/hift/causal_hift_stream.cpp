#include "model/hift/causal_hift_stream.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

CausalHiftStream::CausalHiftStream(const CausalHiftVocoder& hift) : hift_(hift) {}

int64_t CausalHiftStream::rows() const {
  return static_cast<int64_t>(mel_.size()) / hift_.config().in_channels;
}

std::vector<float> CausalHiftStream::push(std::span<const float> mel, bool final) {
  const int64_t ch = hift_.config().in_channels, up = hift_.samples_per_frame();
  const int64_t harmonics = hift_.config().nb_harmonics + 1;
  if (done_) fail("hift stream: mel after the final chunk");
  if (static_cast<int64_t>(mel.size()) % ch != 0)
    fail("hift stream: ", mel.size(), " values are not whole frames of ", ch);
  mel_.insert(mel_.end(), mel.begin(), mel.end());
  done_ = final;
  const int64_t n = frames();
  const int64_t end = final ? n : n - hift_.held_back_frames();  // frames audio can cover
  last_window_ = 0;
  if (end <= sent_frames_) return {};
  // The decoder starts its receptive field before the first unsent frame; the F0 predictor
  // its own context before that.
  const int64_t d0 = std::max<int64_t>(0, sent_frames_ - hift_.decoder_context_frames());
  const int64_t w0 = std::max<int64_t>(0, d0 - hift_.f0_context_frames());
  if (w0 < mel_first_) fail("hift stream: the context frames were dropped");
  std::vector<double> start;
  if (d0 > 0) {
    const int64_t at = d0 - 1 - cum_first_;
    if (at < 0 || (at + 1) * harmonics > static_cast<int64_t>(cum_.size()))
      fail("hift stream: no carried phase for frame ", d0 - 1);
    start.assign(cum_.begin() + at * harmonics, cum_.begin() + (at + 1) * harmonics);
  }
  std::vector<float> speech;
  std::vector<double> cum;
  CausalHiftRequest r;
  r.mel = std::span<const float>(mel_).subspan(static_cast<size_t>((w0 - mel_first_) * ch));
  r.frames = n - w0;
  r.finalize = final;
  r.f0_context = d0 - w0;
  r.first_sample = d0 * up;
  r.phase_start = start;
  r.phase_cum = &cum;
  r.speech = &speech;
  hift_.vocode({&r, 1});
  last_window_ = n - w0;
  // The phases after each frame whose F0 this call made (exact: its F0 had full context).
  const int64_t keep_from = d0 - cum_first_;
  cum_.resize(static_cast<size_t>(std::max<int64_t>(keep_from, 0) * harmonics));
  if (keep_from < 0) cum_first_ = d0;
  cum_.insert(cum_.end(), cum.begin(), cum.end());
  // The new samples, then drop what no later call reads.
  std::vector<float> out(speech.begin() + (sent_frames_ - d0) * up, speech.end());
  sent_frames_ = end;
  const int64_t next_d0 = std::max<int64_t>(0, sent_frames_ - hift_.decoder_context_frames());
  const int64_t next_w0 = std::max<int64_t>(0, next_d0 - hift_.f0_context_frames());
  if (next_w0 > mel_first_) {
    mel_.erase(mel_.begin(), mel_.begin() + (next_w0 - mel_first_) * ch);
    mel_first_ = next_w0;
  }
  if (next_d0 - 1 > cum_first_) {
    const int64_t drop = next_d0 - 1 - cum_first_;
    cum_.erase(cum_.begin(), cum_.begin() + drop * harmonics);
    cum_first_ += drop;
  }
  return out;
}

}  // namespace cosy
