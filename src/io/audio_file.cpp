#include "io/audio_file.h"

#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace cosy {

namespace {

struct FormatInfo {
  AudioFormat format;
  const char* name;
  const char* help;
};
constexpr FormatInfo kFormats[] = {
    {AudioFormat::Wav, "wav", "16-bit PCM WAV"},
    {AudioFormat::WavFloat, "wav-float", "32-bit float WAV"},
    {AudioFormat::Flac, "flac", "16-bit FLAC"},
    {AudioFormat::Pcm16, "pcm", "raw signed 16-bit little-endian mono samples, no header"},
};

using Sink = AudioWriter::Sink;

sf_count_t sink_length(void* user) {
  struct stat st {};
  if (fstat(static_cast<Sink*>(user)->fd, &st) != 0) return -1;
  return static_cast<sf_count_t>(st.st_size);
}

sf_count_t sink_seek(sf_count_t offset, int whence, void* user) {
  auto* sink = static_cast<Sink*>(user);
  return static_cast<sf_count_t>(lseek(sink->fd, static_cast<off_t>(offset), whence));
}

sf_count_t sink_tell(void* user) {
  return static_cast<sf_count_t>(lseek(static_cast<Sink*>(user)->fd, 0, SEEK_CUR));
}

sf_count_t sink_read(void* ptr, sf_count_t count, void* user) {
  const ssize_t n = ::read(static_cast<Sink*>(user)->fd, ptr, static_cast<size_t>(count));
  return n < 0 ? 0 : static_cast<sf_count_t>(n);
}

// Writes all of it or records why not: a short count makes libsndfile's call fail too.
sf_count_t sink_write(const void* ptr, sf_count_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const auto* p = static_cast<const char*>(ptr);
  sf_count_t done = 0;
  while (done < count) {
    const ssize_t n = ::write(sink->fd, p + done, static_cast<size_t>(count - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (sink->error == 0) sink->error = n < 0 ? errno : EIO;
      break;
    }
    done += n;
  }
  return done;
}

}  // namespace

AudioFormat parse_audio_format(const std::string& s) {
  for (const FormatInfo& f : kFormats) {
    if (s == f.name) return f.format;
  }
  fail("unknown audio format '", s, "' (expected wav, wav-float, flac or pcm)");
}

const char* audio_format_name(AudioFormat format) {
  for (const FormatInfo& f : kFormats) {
    if (f.format == format) return f.name;
  }
  return "?";
}

const std::vector<std::string>& audio_format_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const FormatInfo& f : kFormats) v.emplace_back(f.name);
    return v;
  }();
  return names;
}

std::string audio_format_help() {
  std::string out;
  for (const FormatInfo& f : kFormats) {
    out += cat(out.empty() ? "" : "; ", f.name, ": ", f.help);
  }
  return out;
}

std::optional<AudioFormat> audio_format_of_path(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".wav") return AudioFormat::Wav;
  if (ext == ".flac") return AudioFormat::Flac;
  if (ext == ".pcm" || ext == ".raw") return AudioFormat::Pcm16;
  return std::nullopt;
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
  if (path == "-") {
    sink_.fd = STDOUT_FILENO;
  } else {
    sink_.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sink_.fd < 0) fail(path.string(), ": cannot write audio: ", std::strerror(errno));
    sink_.owned = true;
  }
  const bool seekable = lseek(sink_.fd, 0, SEEK_CUR) >= 0;
  SF_VIRTUAL_IO io{sink_length, sink_seek, sink_read, sink_write, sink_tell};
  file_ = sf_open_virtual(&io, SFM_WRITE, &info, &sink_);
  if (file_ == nullptr) {
    const std::string why = sink_.error != 0 ? std::strerror(sink_.error) : sf_strerror(nullptr);
    if (sink_.owned) ::close(sink_.fd);
    fail(path.string(), ": cannot write audio: ", why);
  }
  auto* f = static_cast<SNDFILE*>(file_);
  // Clip rather than wrap when converting to integer samples.
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  // A header that always matches the data written so far.
  if (seekable) sf_command(f, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
  try {
    check("writing the header");
  } catch (...) {  // the destructor does not run for a constructor that throws
    sf_close(f);
    file_ = nullptr;
    if (sink_.owned) ::close(sink_.fd);
    sink_.fd = -1;
    throw;
  }
}

AudioWriter::~AudioWriter() {
  if (file_ != nullptr) sf_close(static_cast<SNDFILE*>(file_));
  if (sink_.owned && sink_.fd >= 0) ::close(sink_.fd);
}

void AudioWriter::check(const char* what) {
  if (sink_.error != 0) fail(path_.string(), ": ", what, " failed: ", std::strerror(sink_.error));
  if (file_ != nullptr && sf_error(static_cast<SNDFILE*>(file_)) != SF_ERR_NO_ERROR) {
    fail(path_.string(), ": ", what, " failed: ", sf_strerror(static_cast<SNDFILE*>(file_)));
  }
}

void AudioWriter::write(std::span<const float> samples) {
  if (file_ == nullptr) fail(path_.string(), ": audio file already closed");
  const auto n = static_cast<sf_count_t>(samples.size());
  const auto written = sf_writef_float(static_cast<SNDFILE*>(file_), samples.data(), n);
  check("writing audio");
  if (written != n) {
    fail(path_.string(), ": writing audio failed (", written, " of ", samples.size(), " samples)");
  }
  samples_ += static_cast<int64_t>(samples.size());
}

void AudioWriter::close() {
  if (file_ == nullptr) return;
  const int closed = sf_close(static_cast<SNDFILE*>(file_));
  file_ = nullptr;
  check("finishing the file");
  if (closed != 0)
    fail(path_.string(), ": closing the audio file failed: ", sf_error_number(closed));
  if (sink_.owned) {
    const int fd = sink_.fd;
    sink_.fd = -1;
    if (::close(fd) != 0)
      fail(path_.string(), ": closing the audio file failed: ", std::strerror(errno));
  }
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
  if (info.channels <= 0 || info.channels > 64) {
    sf_close(f);
    fail(path.string(), ": unsupported audio layout (", info.channels, " channels)");
  }
  // Read to the end in blocks: a streamed file's header may give no length (0xFFFFFFFF in
  // a WAV, 0 in a FLAC STREAMINFO), so the header's frame count is not trusted.
  constexpr sf_count_t kBlock = 1 << 16;
  constexpr int64_t kMaxFrames = int64_t{1} << 31;
  std::vector<float> block(static_cast<size_t>(kBlock * info.channels));
  Audio a;
  a.sample_rate = info.samplerate;
  sf_count_t got;
  while ((got = sf_readf_float(f, block.data(), kBlock)) > 0) {
    if (static_cast<int64_t>(a.samples.size()) + got > kMaxFrames) {
      sf_close(f);
      fail(path.string(), ": longer than ", kMaxFrames, " frames");
    }
    for (sf_count_t i = 0; i < got; ++i)
      a.samples.push_back(block[static_cast<size_t>(i * info.channels)]);
  }
  sf_close(f);
  return a;
}

namespace {

// libsndfile's virtual I/O over bytes in memory.
struct MemoryFile {
  std::span<const std::byte> bytes;
  sf_count_t pos = 0;
};

sf_count_t mem_length(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(user)->bytes.size());
}
sf_count_t mem_seek(sf_count_t offset, int whence, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  const sf_count_t size = static_cast<sf_count_t>(m->bytes.size());
  sf_count_t to = whence == SEEK_SET   ? offset
                  : whence == SEEK_CUR ? m->pos + offset
                                       : size + offset;
  if (to < 0 || to > size) return -1;
  m->pos = to;
  return m->pos;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  const sf_count_t size = static_cast<sf_count_t>(m->bytes.size());
  const sf_count_t n = std::max<sf_count_t>(0, std::min(count, size - m->pos));
  if (n > 0) std::memcpy(ptr, m->bytes.data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t mem_tell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

}  // namespace

Audio decode_audio_mean(std::span<const std::byte> bytes, const std::string& label,
                        double max_seconds) {
  if (bytes.empty()) fail(label, ": the audio is empty (0 bytes)");
  MemoryFile mem{bytes, 0};
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info{};
  SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &mem);
  if (f == nullptr) fail(label, ": not a readable audio file (", sf_strerror(nullptr), ")");
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> closer(f, sf_close);
  if (info.channels <= 0 || info.channels > 64)
    fail(label, ": unsupported audio layout (", info.channels, " channels)");
  if (info.samplerate <= 0) fail(label, ": the file gives no sample rate");
  const auto max_frames = static_cast<int64_t>(max_seconds * info.samplerate) + 1;
  constexpr sf_count_t kBlock = 1 << 14;
  std::vector<float> block(static_cast<size_t>(kBlock * info.channels));
  Audio a;
  a.sample_rate = info.samplerate;
  sf_count_t got;
  while ((got = sf_readf_float(f, block.data(), kBlock)) > 0) {
    if (static_cast<int64_t>(a.samples.size()) + got > max_frames) {
      fail(label, ": longer than ", max_seconds, " s");
    }
    for (sf_count_t i = 0; i < got; ++i) {
      float sum = 0.0f;
      for (int c = 0; c < info.channels; ++c)
        sum += block[static_cast<size_t>(i * info.channels + c)];
      a.samples.push_back(sum / static_cast<float>(info.channels));
    }
  }
  if (sf_error(f) != SF_ERR_NO_ERROR)
    fail(label, ": the audio data is corrupt (", sf_strerror(f), ")");
  return a;
}

}  // namespace cosy
