#include "io/audio_file.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"

namespace cosy {
namespace {

std::vector<float> tone(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.5f * std::sin(0.01f * static_cast<float>(i));
  return v;
}

TEST(AudioFile, WavFlacAndFloatRoundTrip) {
  const auto dir = testing::scratch_dir("audio");
  const auto x = tone(24000);
  for (auto [name, fmt, tol] : {std::tuple{"a.wav", AudioFormat::Wav, 1.0 / 32767},
                                std::tuple{"a.flac", AudioFormat::Flac, 1.0 / 32767},
                                std::tuple{"f.wav", AudioFormat::WavFloat, 0.0}}) {
    write_audio(dir / name, x, 24000, fmt);
    const Audio a = read_audio(dir / name);
    EXPECT_EQ(a.sample_rate, 24000) << name;
    ASSERT_EQ(a.samples.size(), x.size()) << name;
    for (size_t i = 0; i < x.size(); i += 97) EXPECT_NEAR(a.samples[i], x[i], tol + 1e-7) << name;
  }
}

TEST(AudioFile, PcmIsLittleEndian16BitAndClips) {
  const auto dir = testing::scratch_dir("audio-pcm");
  const std::vector<float> x = {0.0f, 1.5f, -1.0f, 0.5f};
  write_audio(dir / "a.pcm", x, 24000, AudioFormat::Pcm16);
  const std::string b = read_whole_file(dir / "a.pcm");
  ASSERT_EQ(b.size(), 8u);
  auto s = [&](int i) {
    return static_cast<int16_t>(uint8_t(b[size_t(2 * i)]) | (uint8_t(b[size_t(2 * i + 1)]) << 8));
  };
  EXPECT_EQ(s(0), 0);
  EXPECT_EQ(s(1), 32767);
  EXPECT_EQ(s(2), -32768);  // libsndfile scales by 32768, as for WAV
  EXPECT_EQ(s(3), 16384);
}

TEST(AudioFile, WriterInChunksEqualsOneWrite) {
  const auto dir = testing::scratch_dir("audio-writer");
  const auto x = tone(5000);
  for (const char* f : {"wav", "flac", "pcm"}) {
    const AudioFormat format = parse_audio_format(f);
    write_audio(dir / (std::string("whole.") + f), x, 24000, format);
    AudioWriter w(dir / (std::string("chunks.") + f), 24000, format);
    for (size_t i = 0; i < x.size(); i += 1234) {
      w.write(std::span(x).subspan(i, std::min<size_t>(1234, x.size() - i)));
    }
    EXPECT_EQ(w.samples(), int64_t(x.size()));
    w.close();
    w.close();  // idempotent
    EXPECT_THROW(w.write(x), Error);
    EXPECT_EQ(read_whole_file(dir / (std::string("whole.") + f)),
              read_whole_file(dir / (std::string("chunks.") + f)))
        << f;
  }
}

TEST(AudioFile, UnwritablePathAndBadFormatAreErrors) {
  EXPECT_THROW(write_audio("/nonexistent-dir/x.wav", tone(10), 24000, AudioFormat::Wav), Error);
  EXPECT_THROW(parse_audio_format("mp3"), Error);
  EXPECT_THROW(read_audio("/nonexistent-dir/x.wav"), Error);
}

}  // namespace
}  // namespace cosy
