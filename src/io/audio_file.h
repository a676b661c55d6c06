// Writing and reading audio files through libsndfile: WAV (16-bit PCM or float), FLAC, and
// raw 16-bit little-endian PCM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace cosy {

enum class AudioFormat { Wav, WavFloat, Flac, Pcm16 };
AudioFormat parse_audio_format(const std::string& s);  // wav | wav-float | flac | pcm

// Writes mono samples in [-1, 1]. Fails with the path and libsndfile's reason.
void write_audio(const std::filesystem::path& path, std::span<const float> samples, int sample_rate,
                 AudioFormat format);

struct Audio {
  std::vector<float> samples;  // mono (the first channel)
  int sample_rate = 0;
};
// Writes a file chunk by chunk (streamed synthesis); close() finishes the header.
class AudioWriter {
 public:
  AudioWriter(const std::filesystem::path& path, int sample_rate, AudioFormat format);
  ~AudioWriter();
  AudioWriter(const AudioWriter&) = delete;
  AudioWriter& operator=(const AudioWriter&) = delete;
  void write(std::span<const float> samples);
  void close();
  int64_t samples() const { return samples_; }

 private:
  std::filesystem::path path_;
  void* file_ = nullptr;  // SNDFILE*
  int64_t samples_ = 0;
};

Audio read_audio(const std::filesystem::path& path);

}  // namespace cosy
