#include "model/hift/causal_hift_stream.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

CausalHiftStream::CausalHiftStream(const CausalHiftVocoder& hift) : hift_(hift) {}

int64_t CausalHiftStream::rows() const {
  return static_cast<int64_t>(mel_.size()) / hift_.config().in_channels;
}

int64_t CausalHiftStream::window_frames(int64_t new_frames, bool final) const {
  const int64_t n = frames() + new_frames;
  const int64_t end = final ? n : n - hift_.held_back_frames();
  if (end <= sent_frames_) return 0;
  const int64_t d0 = std::max<int64_t>(0, sent_frames_ - hift_.decoder_context_frames());
  return n - std::max<int64_t>(0, d0 - hift_.f0_context_frames());
}

bool CausalHiftStream::prepare(std::span<const float> mel, bool final, Window& w,
                               CausalHiftRequest& r) {
  const int64_t ch = hift_.config().in_channels, up = hift_.samples_per_frame();
  const int64_t harmonics = hift_.config().nb_harmonics + 1;
  w.mel_values = mel_.size();
  w.was_done = done_;
  if (done_) fail("hift stream: mel after the final chunk");
  if (static_cast<int64_t>(mel.size()) % ch != 0)
    fail("hift stream: ", mel.size(), " values are not whole frames of ", ch);
  mel_.insert(mel_.end(), mel.begin(), mel.end());
  done_ = final;
  const int64_t n = frames();
  w.end = final ? n : n - hift_.held_back_frames();  // frames audio can cover
  last_window_ = 0;
  if (w.end <= sent_frames_) return false;
  // The decoder starts its receptive field before the first unsent frame; the F0 predictor
  // its own context before that.
  w.d0 = std::max<int64_t>(0, sent_frames_ - hift_.decoder_context_frames());
  w.w0 = std::max<int64_t>(0, w.d0 - hift_.f0_context_frames());
  if (w.w0 < mel_first_) fail("hift stream: the context frames were dropped");
  if (w.d0 > 0) {
    const int64_t at = w.d0 - 1 - cum_first_;
    if (at < 0 || (at + 1) * harmonics > static_cast<int64_t>(cum_.size()))
      fail("hift stream: no carried phase for frame ", w.d0 - 1);
    w.start.assign(cum_.begin() + at * harmonics, cum_.begin() + (at + 1) * harmonics);
  }
  r.mel = std::span<const float>(mel_).subspan(static_cast<size_t>((w.w0 - mel_first_) * ch));
  r.frames = n - w.w0;
  r.finalize = final;
  r.f0_context = w.d0 - w.w0;
  r.first_sample = w.d0 * up;
  r.phase_start = w.start;
  r.phase_cum = &w.cum;
  r.speech = &w.speech;
  last_window_ = n - w.w0;
  return true;
}

void CausalHiftStream::absorb(Window& w, std::vector<float>& out) {
  const int64_t ch = hift_.config().in_channels, up = hift_.samples_per_frame();
  const int64_t harmonics = hift_.config().nb_harmonics + 1;
  // The phases after each frame whose F0 this call made (exact: its F0 had full context).
  const int64_t keep_from = w.d0 - cum_first_;
  cum_.resize(static_cast<size_t>(std::max<int64_t>(keep_from, 0) * harmonics));
  if (keep_from < 0) cum_first_ = w.d0;
  cum_.insert(cum_.end(), w.cum.begin(), w.cum.end());
  // The new samples, then drop what no later call reads.
  out.insert(out.end(), w.speech.begin() + (sent_frames_ - w.d0) * up, w.speech.end());
  sent_frames_ = w.end;
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
}

std::vector<float> CausalHiftStream::push(std::span<const float> mel, bool final) {
  std::vector<float> out;
  Step s{this, mel, final, &out};
  step(hift_, {&s, 1});
  return out;
}

void CausalHiftStream::step(const CausalHiftVocoder& hift, std::span<Step> steps) {
  std::vector<Window> windows(steps.size());
  std::vector<CausalHiftRequest> requests;
  std::vector<size_t> owners;
  requests.reserve(steps.size());
  for (const Step& st : steps)
    if (&st.stream->hift_ != &hift) fail("hift stream: stepped with another vocoder");
  size_t prepared = 0;
  try {
    for (; prepared < steps.size(); ++prepared) {
      CausalHiftStream& s = *steps[prepared].stream;
      CausalHiftRequest r;
      const bool runs = s.prepare(steps[prepared].mel, steps[prepared].final, windows[prepared], r);
      if (runs) {
        requests.push_back(r);
        owners.push_back(prepared);
      }
    }
    if (!requests.empty()) hift.vocode(requests);
  } catch (...) {
    // Nothing was computed: every stream is put back as it was, so each can be retried.
    for (size_t i = 0; i <= prepared && i < steps.size(); ++i) {
      CausalHiftStream& s = *steps[i].stream;
      s.mel_.resize(windows[i].mel_values);
      s.done_ = windows[i].was_done;
      s.last_window_ = 0;
    }
    throw;
  }
  for (const size_t i : owners) steps[i].stream->absorb(windows[i], *steps[i].out);
}

}  // namespace cosy
