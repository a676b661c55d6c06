#include "runtime/playback.h"

#include <algorithm>

namespace cosy {

namespace {
// Gaps shorter than this are clock noise between a chunk and its neighbour, not a stall
// anyone hears (one sample at 24 kHz is 42 µs).
constexpr double kAudibleGap = 1e-4;
}  // namespace

Playback listen(std::span<const Arrival> arrivals, double buffer_s, double ended_s) {
  Playback p;
  double buffered = 0;  // arrived and not yet played, while paused
  double run_out = 0;   // while playing: when the audio that has arrived runs out
  double stall_from = 0;
  bool playing = false, started = false;
  size_t last_audio = 0;  // the last chunk with samples in it
  for (size_t i = 0; i < arrivals.size(); ++i) {
    if (arrivals[i].audio_s > 0) last_audio = i;
  }
  for (size_t i = 0; i < arrivals.size(); ++i) {
    const Arrival& a = arrivals[i];
    if (a.audio_s <= 0) continue;
    if (p.first_audio_s < 0) p.first_audio_s = a.at_s;
    p.audio_s += a.audio_s;
    if (playing) {
      if (a.at_s <= run_out + kAudibleGap) {
        run_out += a.audio_s;
        continue;
      }
      // The listener ran out of audio at run_out: a stall until the buffer refills.
      playing = false;
      stall_from = run_out;
      buffered = 0;
    }
    buffered += a.audio_s;
    if (buffered + 1e-12 >= buffer_s || i == last_audio) {
      // With the end known only later, the tail waits for it below the buffer's fill.
      const double resume = buffered + 1e-12 >= buffer_s ? a.at_s : std::max(a.at_s, ended_s);
      if (started) {
        const double gap = resume - stall_from;
        if (gap > kAudibleGap) {
          ++p.stalls;
          p.stall_s += gap;
          p.longest_stall_s = std::max(p.longest_stall_s, gap);
        }
      } else {
        started = true;
        p.playing_from_s = resume;
      }
      playing = true;
      run_out = resume + buffered;
      buffered = 0;
    }
  }
  p.finished_s = playing ? run_out : 0;
  return p;
}

}  // namespace cosy
