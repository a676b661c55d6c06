#include "io/audio_file.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace cosy {

AudioFormat parse_audio_format(const std::string& s) {
  if (s == "wav") return AudioFormat::Wav;
  if (s == "wav-float") return AudioFormat::WavFloat;
  if (s == "flac") return AudioFormat::Flac;
  if (s == "pcm") return AudioFormat::Pcm16;
  fail("unknown audio format '", s, "' (expected wav, wav-float, flac or pcm)");
}

AudioWriter::AudioWriter(const std::filesystem::path& path, int sample_rate, AudioFormat format)
    : path_(path) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  switch (format) {
    case AudioFormat::Wav:
      info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
      break;
    case AudioFormat::WavFloat:
      info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
      break;
    case AudioFormat::Flac:
      info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
      break;
    case AudioFormat::Pcm16:
      info.format = SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE;
      break;
  }
  file_ = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file_ == nullptr) fail(path.string(), ": cannot write audio: ", sf_strerror(nullptr));
  // Clip rather than wrap when converting to integer samples.
  sf_command(static_cast<SNDFILE*>(file_), SFC_SET_CLIPPING, nullptr, SF_TRUE);
}

AudioWriter::~AudioWriter() {
  if (file_ != nullptr) sf_close(static_cast<SNDFILE*>(file_));
}

void AudioWriter::write(std::span<const float> samples) {
  if (file_ == nullptr) fail(path_.string(), ": audio file already closed");
  const auto n = static_cast<sf_count_t>(samples.size());
  const auto written = sf_writef_float(static_cast<SNDFILE*>(file_), samples.data(), n);
  if (written != n) {
    fail(path_.string(), ": writing audio failed (", written, " of ", samples.size(), " samples)");
  }
  samples_ += static_cast<int64_t>(samples.size());
  // Streamed output is readable as it grows.
  sf_write_sync(static_cast<SNDFILE*>(file_));
}

void AudioWriter::close() {
  if (file_ == nullptr) return;
  const int closed = sf_close(static_cast<SNDFILE*>(file_));
  file_ = nullptr;
  if (closed != 0) fail(path_.string(), ": closing the audio file failed");
}

void write_audio(const std::filesystem::path& path, std::span<const float> samples, int sample_rate,
                 AudioFormat format) {
  AudioWriter w(path, sample_rate, format);
  w.write(samples);
  w.close();
}

Audio read_audio(const std::filesystem::path& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (f == nullptr) fail(path.string(), ": cannot read audio: ", sf_strerror(nullptr));
  if (info.channels <= 0 || info.frames < 0 || info.frames > (int64_t{1} << 32)) {
    sf_close(f);
    fail(path.string(), ": unsupported audio layout");
  }
  std::vector<float> all(static_cast<size_t>(info.frames * info.channels));
  const auto got = sf_readf_float(f, all.data(), info.frames);
  sf_close(f);
  Audio a;
  a.sample_rate = info.samplerate;
  a.samples.resize(static_cast<size_t>(got));
  for (sf_count_t i = 0; i < got; ++i)
    a.samples[static_cast<size_t>(i)] = all[static_cast<size_t>(i * info.channels)];
  return a;
}

}  // namespace cosy
