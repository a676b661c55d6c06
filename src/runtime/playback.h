// A listener's view of one stream: audio arrives in chunks; the listener starts playing once
// the jitter buffer holds `buffer_s` of audio (or the stream has ended), then plays in real
// time. A stall is a moment when the next audio has not arrived: playback stops until the
// buffer refills to `buffer_s` (or the stream ends) and goes on from there.
#pragma once

#include <cstdint>
#include <span>

namespace cosy {

struct Arrival {
  double at_s = 0;     // when the chunk arrived, seconds since the request was sent
  double audio_s = 0;  // seconds of audio in it
};

struct Playback {
  double first_audio_s = -1;   // the first non-empty chunk's arrival; -1: none came
  double playing_from_s = -1;  // when playback started (first audio + buffering)
  double audio_s = 0;
  int64_t stalls = 0;
  double stall_s = 0;  // total time spent stalled
  double longest_stall_s = 0;
  double finished_s = 0;  // when the last sample has been played
};

// `arrivals` in order of arrival; `ended_s`: when the stream's end became known (the last
// chunk's arrival when it carried the end).
Playback listen(std::span<const Arrival> arrivals, double buffer_s, double ended_s);

}  // namespace cosy
