// Writing and reading audio files through libsndfile: WAV (16-bit PCM or float), FLAC, and
// raw 16-bit little-endian PCM.
#pragma once

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
Audio read_audio(const std::filesystem::path& path);

}  // namespace cosy
