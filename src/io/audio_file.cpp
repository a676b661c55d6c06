#include "io/audio_file.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/file_io.h"

namespace cosy {

AudioFormat parse_audio_format(const std::string& s) {
  if (s == "wav") return AudioFormat::Wav;
  if (s == "wav-float") return AudioFormat::WavFloat;
  if (s == "flac") return AudioFormat::Flac;
  if (s == "pcm") return AudioFormat::Pcm16;
  fail("unknown audio format '", s, "' (expected wav, wav-float, flac or pcm)");
}

void write_audio(const std::filesystem::path& path, std::span<const float> samples, int sample_rate,
                 AudioFormat format) {
  if (format == AudioFormat::Pcm16) {
    std::string bytes(samples.size() * 2, '\0');
    for (size_t i = 0; i < samples.size(); ++i) {
      const float v = std::clamp(samples[i], -1.0f, 1.0f);
      const auto s = static_cast<int16_t>(std::lrint(v * 32767.0f));
      bytes[2 * i] = static_cast<char>(s & 0xff);
      bytes[2 * i + 1] = static_cast<char>((s >> 8) & 0xff);
    }
    write_whole_file(path, bytes);
    return;
  }
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
      break;
  }
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (f == nullptr) fail(path.string(), ": cannot write audio: ", sf_strerror(nullptr));
  // Clip rather than wrap when converting to integer samples.
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const auto written = sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size()));
  const int closed = sf_close(f);
  if (written != static_cast<sf_count_t>(samples.size()) || closed != 0) {
    fail(path.string(), ": writing audio failed (", written, " of ", samples.size(), " samples)");
  }
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
