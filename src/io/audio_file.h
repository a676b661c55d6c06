// Writing and reading audio files through libsndfile: WAV (16-bit PCM or float), FLAC, and
// raw 16-bit little-endian PCM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cosy {

enum class AudioFormat { Wav, WavFloat, Flac, Pcm16 };
AudioFormat parse_audio_format(const std::string& s);  // wav | wav-float | flac | pcm
const char* audio_format_name(AudioFormat f);
// Every format's name, in order, and what it writes (for --help).
const std::vector<std::string>& audio_format_names();
std::string audio_format_help();
// The format a file name's extension implies (.wav, .flac, .pcm, .raw), if any.
std::optional<AudioFormat> audio_format_of_path(const std::filesystem::path& path);

// Writes mono samples in [-1, 1]. Fails with the path and libsndfile's reason.
void write_audio(const std::filesystem::path& path, std::span<const float> samples, int sample_rate,
                 AudioFormat format);

struct Audio {
  std::vector<float> samples;  // mono (the first channel)
  int sample_rate = 0;
};
// Writes a file chunk by chunk (streamed synthesis); close() finishes it. Every byte goes
// through our own write() calls, so a full disk, a closed pipe or a failed close is an
// Error naming the path, never a silent success. "-" is standard output. In a seekable
// file the header is rewritten after every write, so the file is valid at every moment,
// even if the process is killed.
class AudioWriter {
 public:
  AudioWriter(const std::filesystem::path& path, int sample_rate, AudioFormat format);
  ~AudioWriter();
  AudioWriter(const AudioWriter&) = delete;
  AudioWriter& operator=(const AudioWriter&) = delete;
  void write(std::span<const float> samples);
  void close();
  int64_t samples() const { return samples_; }

  struct Sink {  // the file descriptor and the first error met on it (libsndfile's callbacks)
    int fd = -1;
    bool owned = false;
    int error = 0;  // errno of the first failed write, seek or close
  };

 private:
  void check(const char* what);

  std::filesystem::path path_;
  Sink sink_;
  void* file_ = nullptr;  // SNDFILE*
  int64_t samples_ = 0;
};

Audio read_audio(const std::filesystem::path& path);

// Decodes a whole audio file held in memory (WAV, FLAC, Ogg/Opus, Ogg/Vorbis, MP3, AIFF...:
// whatever libsndfile reads) to mono as the official load_wav does: float samples in
// [-1, 1) (16-bit PCM scaled by 1/32768), averaged over the channels. More than
// `max_seconds` of audio is an Error, found before it is all decoded. `label` names the
// input in errors.
Audio decode_audio_mean(std::span<const std::byte> bytes, const std::string& label, double max_seconds);

}  // namespace cosy
