#include "runtime/playback.h"

#include <gtest/gtest.h>

#include <vector>

namespace cosy {
namespace {

// Chunks of 1 s of audio every 0.5 s: the listener never runs out.
TEST(Playback, AudioFasterThanRealTimeNeverStalls) {
  const std::vector<Arrival> a = {{0.3, 1}, {0.8, 1}, {1.3, 1}, {1.8, 1}};
  const Playback p = listen(a, 0, 1.8);
  EXPECT_DOUBLE_EQ(p.first_audio_s, 0.3);
  EXPECT_DOUBLE_EQ(p.playing_from_s, 0.3);
  EXPECT_DOUBLE_EQ(p.audio_s, 4);
  EXPECT_EQ(p.stalls, 0);
  EXPECT_DOUBLE_EQ(p.finished_s, 4.3);
}

// 1 s chunks every 1.5 s: after each second of audio, the listener waits 0.5 s.
TEST(Playback, AudioSlowerThanRealTimeStallsEachGap) {
  const std::vector<Arrival> a = {{1.0, 1}, {2.5, 1}, {4.0, 1}};
  const Playback p = listen(a, 0, 4.0);
  EXPECT_EQ(p.stalls, 2);
  EXPECT_NEAR(p.stall_s, 1.0, 1e-12);
  EXPECT_NEAR(p.longest_stall_s, 0.5, 1e-12);
  EXPECT_NEAR(p.finished_s, 5.0, 1e-12);
}

// A 1.5 s jitter buffer absorbs the same gaps: playback starts at 2.5 s with 2 s buffered.
TEST(Playback, AJitterBufferDelaysTheStartAndAbsorbsGaps) {
  const std::vector<Arrival> a = {{1.0, 1}, {2.5, 1}, {4.0, 1}};
  const Playback p = listen(a, 1.5, 4.0);
  EXPECT_DOUBLE_EQ(p.first_audio_s, 1.0);
  EXPECT_DOUBLE_EQ(p.playing_from_s, 2.5);
  EXPECT_EQ(p.stalls, 0);
  EXPECT_NEAR(p.finished_s, 5.5, 1e-12);
}

// After a stall the buffer refills before playback goes on; a stream shorter than the
// buffer plays when its end is known.
TEST(Playback, AStallRefillsTheBufferAndShortStreamsPlayAtTheEnd) {
  const std::vector<Arrival> a = {{0, 0.5}, {0.2, 0.5}, {3.0, 0.25}, {3.2, 0.25}, {3.3, 0.5}};
  const Playback p = listen(a, 0.5, 3.3);
  // Plays 0 .. 1.0, stalls until the buffer holds 0.5 s again at 3.2.
  EXPECT_EQ(p.stalls, 1);
  EXPECT_NEAR(p.stall_s, 2.2, 1e-12);
  const std::vector<Arrival> short_one = {{0.4, 0.1}, {0.5, 0}};
  const Playback s = listen(short_one, 1.0, 0.7);
  EXPECT_DOUBLE_EQ(s.playing_from_s, 0.7);
  EXPECT_EQ(s.stalls, 0);
  EXPECT_EQ(listen({}, 0, 1).first_audio_s, -1);
}

}  // namespace
}  // namespace cosy
