#include "server/audio_encoder.h"

#include <lame/lame.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace cosy::server {
namespace {

// libsndfile's virtual I/O into a growing string, taken as it fills. A stream cannot seek
// back: a codec that tries to rewrite a header is told no, and keeps its streaming form.
struct MemorySink {
  std::string bytes;
  sf_count_t written = 0;
};

sf_count_t sink_length(void* user) { return static_cast<MemorySink*>(user)->written; }
sf_count_t sink_seek(sf_count_t offset, int whence, void* user) {
  auto* sink = static_cast<MemorySink*>(user);
  if ((whence == SEEK_CUR && offset == 0) || (whence == SEEK_SET && offset == sink->written) ||
      (whence == SEEK_END && offset == 0)) {
    return sink->written;
  }
  return -1;
}
sf_count_t sink_read(void*, sf_count_t, void*) { return 0; }
sf_count_t sink_write(const void* ptr, sf_count_t count, void* user) {
  auto* sink = static_cast<MemorySink*>(user);
  sink->bytes.append(static_cast<const char*>(ptr), static_cast<size_t>(count));
  sink->written += count;
  return count;
}
sf_count_t sink_tell(void* user) { return static_cast<MemorySink*>(user)->written; }

// The one float → 16-bit conversion of every lossless format (so pcm, wav and flac carry the
// same samples): clipped to [-1, 1], scaled by 32767, rounded to nearest.
std::vector<int16_t> to_pcm16(std::span<const float> samples) {
  std::vector<int16_t> out(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const float x = std::isnan(samples[i]) ? 0.0f : std::clamp(samples[i], -1.0f, 1.0f);
    out[i] = static_cast<int16_t>(std::lrintf(x * 32767.0f));
  }
  return out;
}

std::string pcm16_bytes(std::span<const float> samples) {
  const auto v = to_pcm16(samples);
  std::string out(v.size() * 2, '\0');
  for (size_t i = 0; i < v.size(); ++i) {  // little-endian whatever the host
    const auto u = static_cast<uint16_t>(v[i]);
    out[2 * i] = static_cast<char>(u & 0xFF);
    out[2 * i + 1] = static_cast<char>(u >> 8);
  }
  return out;
}

class PcmEncoder : public StreamEncoder {
 public:
  std::string encode(std::span<const float> samples) override { return pcm16_bytes(samples); }
  std::string finish() override { return {}; }
};

class SndfileEncoder : public StreamEncoder {
 public:
  // `lossless`: the samples go in as to_pcm16's integers, else as floats for the codec.
  SndfileEncoder(int major_format, int sample_rate, const char* name, bool lossless)
      : name_(name), lossless_(lossless) {
    SF_INFO info{};
    info.samplerate = sample_rate;
    info.channels = 1;
    info.format = major_format;
    SF_VIRTUAL_IO io{sink_length, sink_seek, sink_read, sink_write, sink_tell};
    file_ = sf_open_virtual(&io, SFM_WRITE, &info, &sink_);
    if (file_ == nullptr) fail(name_, " encoder: ", sf_strerror(nullptr));
    sf_command(file_, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  }
  ~SndfileEncoder() override {
    if (file_ != nullptr) sf_close(file_);
  }
  std::string encode(std::span<const float> samples) override {
    const auto n = static_cast<sf_count_t>(samples.size());
    const sf_count_t written = lossless_ ? sf_writef_short(file_, to_pcm16(samples).data(), n)
                                         : sf_writef_float(file_, samples.data(), n);
    if (written != n) fail(name_, " encoder: ", sf_strerror(file_));
    return take();
  }
  std::string finish() override {
    const int rc = sf_close(file_);
    file_ = nullptr;
    if (rc != 0) fail(name_, " encoder: ", sf_error_number(rc));
    return take();
  }

 private:
  std::string take() {
    std::string out;
    out.swap(sink_.bytes);
    return out;
  }
  const char* name_;
  bool lossless_;
  MemorySink sink_;
  SNDFILE* file_ = nullptr;
};

// MP3 through LAME itself: libsndfile's MP3 writer leaves a Xing/LAME frame at the start
// that it can only complete by seeking back, and a stream cannot; without the tag, every
// decoder reads a plain constant-bit-rate stream to its end.
class Mp3Encoder : public StreamEncoder {
 public:
  explicit Mp3Encoder(int sample_rate) : lame_(lame_init()) {
    if (lame_ == nullptr) fail("mp3 encoder: lame_init failed");
    lame_set_in_samplerate(lame_, sample_rate);
    lame_set_out_samplerate(lame_, sample_rate);
    lame_set_num_channels(lame_, 1);
    lame_set_mode(lame_, MONO);
    lame_set_brate(lame_, 64);  // kbit/s: transparent for 24 kHz mono speech
    lame_set_bWriteVbrTag(lame_, 0);
    if (lame_init_params(lame_) < 0) {
      lame_close(lame_);
      fail("mp3 encoder: LAME refused the parameters (rate ", sample_rate, ")");
    }
  }
  ~Mp3Encoder() override { lame_close(lame_); }
  std::string encode(std::span<const float> samples) override {
    // LAME's worst case: 1.25 * samples + 7200 bytes.
    std::string out(samples.size() * 5 / 4 + 7200, '\0');
    const int n = lame_encode_buffer_ieee_float(
        lame_, samples.data(), samples.data(), static_cast<int>(samples.size()),
        reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    if (n < 0) fail("mp3 encoder: LAME error ", n);
    out.resize(static_cast<size_t>(n));
    return out;
  }
  std::string finish() override {
    std::string out(7200, '\0');
    const int n = lame_encode_flush(lame_, reinterpret_cast<unsigned char*>(out.data()),
                                    static_cast<int>(out.size()));
    if (n < 0) fail("mp3 encoder: LAME error ", n);
    out.resize(static_cast<size_t>(n));
    return out;
  }

 private:
  lame_global_flags* lame_;
};

// A RIFF/WAVE header for 16-bit mono PCM of unknown length, then raw PCM.
class StreamingWavEncoder : public StreamEncoder {
 public:
  explicit StreamingWavEncoder(int sample_rate) : header_(riff_header(sample_rate)) {}
  std::string encode(std::span<const float> samples) override {
    std::string out = std::move(header_);
    header_.clear();
    return out + pcm_.encode(samples);
  }
  std::string finish() override {
    std::string out = std::move(header_);
    header_.clear();
    return out + pcm_.finish();
  }

 private:
  static std::string riff_header(int sample_rate) {
    std::string h;
    auto u32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) h += static_cast<char>((v >> (8 * i)) & 0xFF);
    };
    auto u16 = [&](uint16_t v) {
      h += static_cast<char>(v & 0xFF);
      h += static_cast<char>(v >> 8);
    };
    h += "RIFF";
    u32(0xFFFFFFFF);  // unknown length, as streamed WAV has it
    h += "WAVEfmt ";
    u32(16);
    u16(1);  // PCM
    u16(1);  // mono
    u32(static_cast<uint32_t>(sample_rate));
    u32(static_cast<uint32_t>(sample_rate) * 2);
    u16(2);
    u16(16);
    h += "data";
    u32(0xFFFFFFFF);
    return h;
  }
  PcmEncoder pcm_;
  std::string header_;
};

}  // namespace

std::unique_ptr<StreamEncoder> StreamEncoder::create(AudioEncoding encoding, int sample_rate) {
  switch (encoding) {
    case AudioEncoding::Pcm:
      return std::make_unique<PcmEncoder>();
    case AudioEncoding::Wav:
      return std::make_unique<StreamingWavEncoder>(sample_rate);
    case AudioEncoding::Flac:
      return std::make_unique<SndfileEncoder>(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, sample_rate,
                                              "flac", true);
    case AudioEncoding::Opus:
      return std::make_unique<SndfileEncoder>(SF_FORMAT_OGG | SF_FORMAT_OPUS, sample_rate, "opus",
                                              false);
    case AudioEncoding::Mp3:
      return std::make_unique<Mp3Encoder>(sample_rate);
  }
  fail("unknown audio encoding");
}

const char* StreamEncoder::content_type(AudioEncoding encoding) {
  switch (encoding) {
    case AudioEncoding::Pcm:
      return "audio/pcm";
    case AudioEncoding::Wav:
      return "audio/wav";
    case AudioEncoding::Flac:
      return "audio/flac";
    case AudioEncoding::Opus:
      return "audio/ogg; codecs=opus";
    case AudioEncoding::Mp3:
      return "audio/mpeg";
  }
  return "application/octet-stream";
}

}  // namespace cosy::server
