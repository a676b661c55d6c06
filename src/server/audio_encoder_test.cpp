#include "server/audio_encoder.h"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace cosy::server {
namespace {

// A voiced-like test signal: a few harmonics of a gliding pitch, in [-0.8, 0.8].
std::vector<float> signal(size_t n, int rate) {
  std::vector<float> x(n);
  double phase = 0;
  for (size_t i = 0; i < n; ++i) {
    const double f0 = 140 + 60 * std::sin(2 * M_PI * double(i) / rate);
    phase += 2 * M_PI * f0 / rate;
    x[i] = float(0.4 * std::sin(phase) + 0.2 * std::sin(2 * phase) + 0.1 * std::sin(3 * phase));
  }
  return x;
}

struct MemoryRead {
  const std::string* bytes;
  sf_count_t pos = 0;
};
sf_count_t r_len(void* u) { return sf_count_t(static_cast<MemoryRead*>(u)->bytes->size()); }
sf_count_t r_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemoryRead*>(u);
  const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : r_len(u);
  m->pos = std::clamp<sf_count_t>(base + off, 0, r_len(u));
  return m->pos;
}
sf_count_t r_read(void* p, sf_count_t n, void* u) {
  auto* m = static_cast<MemoryRead*>(u);
  const sf_count_t k = std::min(n, r_len(u) - m->pos);
  std::memcpy(p, m->bytes->data() + m->pos, size_t(k));
  m->pos += k;
  return k;
}
sf_count_t r_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t r_tell(void* u) { return static_cast<MemoryRead*>(u)->pos; }

// Decodes a whole stream with libsndfile, as a client library would.
std::vector<float> decode(const std::string& bytes, int& rate, SF_INFO* format_hint = nullptr) {
  MemoryRead m{&bytes};
  SF_VIRTUAL_IO io{r_len, r_seek, r_read, r_write, r_tell};
  SF_INFO info{};
  if (format_hint != nullptr) info = *format_hint;
  SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &m);
  if (f == nullptr) {
    ADD_FAILURE() << "cannot decode: " << sf_strerror(nullptr);
    return {};
  }
  std::vector<float> out;
  std::vector<float> buf(4096 * size_t(info.channels));
  sf_count_t got;
  while ((got = sf_readf_float(f, buf.data(), 4096)) > 0) {
    for (sf_count_t i = 0; i < got; ++i) out.push_back(buf[size_t(i * info.channels)]);
  }
  rate = info.samplerate;
  sf_close(f);
  return out;
}

std::vector<int16_t> decode_shorts(const std::string& bytes, int& rate) {
  MemoryRead m{&bytes};
  SF_VIRTUAL_IO io{r_len, r_seek, r_read, r_write, r_tell};
  SF_INFO info{};
  SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &m);
  if (f == nullptr) {
    ADD_FAILURE() << "cannot decode: " << sf_strerror(nullptr);
    return {};
  }
  std::vector<int16_t> out(4096);
  size_t have = 0;
  sf_count_t got;
  while ((got = sf_readf_short(f, out.data() + have, 4096)) > 0) {
    have += size_t(got);
    out.resize(have + 4096);
  }
  out.resize(have);
  rate = info.samplerate;
  sf_close(f);
  return out;
}

// Encodes in uneven chunks, as the engine delivers them.
std::string encode_in_chunks(AudioEncoding e, const std::vector<float>& x, int rate) {
  auto enc = StreamEncoder::create(e, rate);
  std::string out;
  size_t pos = 0;
  for (size_t step = 1000; pos < x.size(); step = step * 3 % 7919 + 500) {
    const size_t n = std::min(step, x.size() - pos);
    out += enc->encode(std::span(x).subspan(pos, n));
    pos += n;
  }
  return out + enc->finish();
}

// Signal-to-noise ratio of `got` against `want` at the best alignment within `max_lag`.
double snr_db(const std::vector<float>& want, const std::vector<float>& got, size_t max_lag) {
  double best = -1e9;
  for (size_t lag = 0; lag <= max_lag && lag < got.size(); ++lag) {
    double s = 0, e = 0;
    const size_t n = std::min(want.size(), got.size() - lag);
    for (size_t i = 0; i < n; ++i) {
      s += double(want[i]) * want[i];
      const double d = double(got[i + lag]) - want[i];
      e += d * d;
    }
    best = std::max(best, 10 * std::log10(s / std::max(e, 1e-20)));
  }
  return best;
}

TEST(StreamEncoder, LosslessFormatsDecodeToTheSameSamplesAsPcm) {
  const int rate = 24000;
  const auto x = signal(rate * 2 + 77, rate);
  const std::string pcm = encode_in_chunks(AudioEncoding::Pcm, x, rate);
  ASSERT_EQ(pcm.size(), x.size() * 2);
  std::vector<int16_t> from_pcm(x.size());
  std::memcpy(from_pcm.data(), pcm.data(), pcm.size());
  for (const AudioEncoding e : {AudioEncoding::Wav, AudioEncoding::Flac}) {
    int got_rate = 0;
    const auto y = decode_shorts(encode_in_chunks(e, x, rate), got_rate);
    EXPECT_EQ(got_rate, rate) << audio_encoding_name(e);
    EXPECT_TRUE(y == from_pcm) << audio_encoding_name(e) << ": not the pcm samples";
  }
  // The streamed WAV says "length unknown".
  const std::string wav = encode_in_chunks(AudioEncoding::Wav, x, rate);
  EXPECT_EQ(wav.substr(0, 4), "RIFF");
  EXPECT_EQ(wav.substr(4, 4), std::string(4, '\xFF'));
  EXPECT_EQ(wav.substr(44), pcm);
}

TEST(StreamEncoder, LossyFormatsDecodeCloseToTheSignal) {
  const int rate = 24000;
  const auto x = signal(size_t{2} * rate, rate);
  for (const auto& [e, min_snr] :
       {std::pair{AudioEncoding::Opus, 10.0}, std::pair{AudioEncoding::Mp3, 10.0}}) {
    const std::string bytes = encode_in_chunks(e, x, rate);
    int got_rate = 0;
    const auto y = decode(bytes, got_rate);
    ASSERT_EQ(got_rate, rate) << audio_encoding_name(e);
    // Within a codec frame or two of the same length, and the same sound.
    EXPECT_NEAR(double(y.size()), double(x.size()), 4000.0) << audio_encoding_name(e);
    EXPECT_GT(snr_db(x, y, 3000), min_snr) << audio_encoding_name(e);
  }
}

TEST(StreamEncoder, FirstBytesComeBeforeTheEnd) {
  const int rate = 24000;
  const auto x = signal(rate, rate);
  for (const AudioEncoding e : {AudioEncoding::Pcm, AudioEncoding::Wav, AudioEncoding::Flac,
                                AudioEncoding::Opus, AudioEncoding::Mp3}) {
    auto enc = StreamEncoder::create(e, rate);
    std::string early;
    for (int k = 0; k < 4; ++k) early += enc->encode(std::span(x).subspan(size_t(k) * 6000, 6000));
    EXPECT_FALSE(early.empty()) << audio_encoding_name(e) << ": nothing before finish()";
  }
}

}  // namespace
}  // namespace cosy::server
