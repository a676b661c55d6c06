// HiFT against the official code's fixtures: every dumped intermediate of the single call,
// and the end-to-end waveform from e2e_mel, all from the seeds alone.
#include <gtest/gtest.h>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "model/hift/hift.h"
#include "model/hift/hift_stream.h"
#include "model/model_folder.h"
#include "waveform_fidelity.h"

namespace cosy {
namespace {

using golden::channels_last;
using golden::floats;
using golden::near;

using golden::f0_drift_envelope;
using golden::sounds_near;

// F0: torch's own float32 F0 differs from a float64 evaluation by 1.3e-4 (see
// golden::kF0RelativeTolerance).
// The streaming chunks' source drifts with their length, as their waveforms do.
constexpr double kLongSourceTolerance = 1e-3;
double f0_tolerance(const std::vector<float>& f0) {
  double m = 0;
  for (float v : f0) m = std::max(m, double(std::fabs(v)));
  return std::max(1e-4, golden::kF0RelativeTolerance * m);
}

class GoldenHift : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.llm = opt.flow = false;
    folder_ = new ModelFolder(load_model_folder(golden::model_dir(), opt));
    hift_ = new HiftVocoder(*backend_, folder_->config.hift, folder_->hift);
  }
  static void TearDownTestSuite() {
    delete hift_;
    delete folder_;
    delete backend_;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static HiftVocoder* hift_;
};
Backend* GoldenHift::backend_ = nullptr;
ModelFolder* GoldenHift::folder_ = nullptr;
HiftVocoder* GoldenHift::hift_ = nullptr;

// The single HiFT case (hift_mel.npy, seed 100), with whatever the test injects.
struct SingleCase {
  std::vector<float> injected_f0, injected_source;
  std::vector<float> speech;
  HiftTrace trace;
};
void run_single_case(const HiftVocoder& hift, SingleCase& c) {
  const Tensor mel_t = golden::load("hift_mel.npy");
  const auto mel = channels_last(mel_t);
  TorchGenerator rng(100);
  HiftRequest r;
  r.mel = mel;
  r.frames = mel_t.dim(2);
  r.rng = &rng;
  r.speech = &c.speech;
  r.trace = &c.trace;
  r.injected_f0 = c.injected_f0;
  r.injected_source = c.injected_source;
  hift.vocode({&r, 1});
}

TEST_F(GoldenHift, SingleCallMatchesEveryIntermediate) {  // from seed 100 alone
  if (!golden::has("hift_mel.npy")) GTEST_SKIP() << "no single HiFT case in this fixture set";
  SingleCase c;
  run_single_case(*hift_, c);
  const HiftTrace& trace = c.trace;
  EXPECT_TRUE(near(trace.f0, floats("hift_f0.npy"), f0_tolerance(floats("hift_f0.npy"))));
  EXPECT_TRUE(near(trace.uv, floats("hift_uv.npy"), 0));
  EXPECT_TRUE(near(trace.sine_waves, floats("hift_sine_waves.npy"), 1e-4));
  EXPECT_TRUE(near(trace.source, floats("hift_source.npy"), 1e-4));
  // A 16-sample window sum of a source within 1e-4.
  EXPECT_TRUE(near(trace.stft_real, channels_last(golden::load("hift_s_stft_real.npy")), 16e-4));
  EXPECT_TRUE(near(trace.stft_imag, channels_last(golden::load("hift_s_stft_imag.npy")), 16e-4));
  EXPECT_TRUE(near(trace.conv_pre_out, channels_last(golden::load("hift_conv_pre_out.npy")), 1e-4));
  // conv_post feeds exp(): its log-magnitudes reach ~20 and carry the amplified source
  // difference; the waveform is held to the F0 drift envelope (waveform_fidelity.h).
  EXPECT_TRUE(
      near(trace.conv_post_out, channels_last(golden::load("hift_conv_post_out.npy")), 0.2));
  const Tensor mel_t = golden::load("hift_mel.npy");
  const auto envelope = f0_drift_envelope(*hift_, channels_last(mel_t), mel_t.dim(2), 100);
  EXPECT_TRUE(sounds_near(trace.istft_out, floats("hift_istft_out.npy"), envelope));
  EXPECT_TRUE(sounds_near(c.speech, floats("hift_speech.npy"), envelope));
}

TEST_F(GoldenHift, DecoderFromTheOfficialSource) {
  if (!golden::has("hift_mel.npy")) GTEST_SKIP() << "no single HiFT case in this fixture set";
  SingleCase c;
  c.injected_source = floats("hift_source.npy");
  run_single_case(*hift_, c);
  EXPECT_TRUE(near(c.trace.stft_real, channels_last(golden::load("hift_s_stft_real.npy")), 1e-4));
  EXPECT_TRUE(near(c.trace.stft_imag, channels_last(golden::load("hift_s_stft_imag.npy")), 1e-4));
  // float32 noise through ~20 conv layers: 2e-5 of log-magnitudes up to ~20.
  EXPECT_TRUE(
      near(c.trace.conv_post_out, channels_last(golden::load("hift_conv_post_out.npy")), 5e-4));
  EXPECT_TRUE(near(c.trace.istft_out, floats("hift_istft_out.npy"), 1e-4));
  EXPECT_TRUE(near(c.speech, floats("hift_speech.npy"), 1e-4));
}

// From the official F0 on, the sine path reproduces torch's float32 rounding (1e-8: only
// sin() differs by an ulp), and so the waveform meets 1e-4. From the seeds alone the F0
// (a float32 conv stack whose summation order is MKL's) differs by a few ulps, and the
// random decoder amplifies the resulting phase drift (SingleCallMatchesEveryIntermediate).
TEST_F(GoldenHift, SourceAndWaveformFromTheOfficialF0) {
  if (!golden::has("hift_mel.npy")) GTEST_SKIP() << "no single HiFT case in this fixture set";
  SingleCase c;
  c.injected_f0 = floats("hift_f0.npy");
  run_single_case(*hift_, c);
  const HiftTrace& trace = c.trace;
  EXPECT_EQ(trace.f0, c.injected_f0);
  EXPECT_TRUE(near(trace.uv, floats("hift_uv.npy"), 0));
  EXPECT_TRUE(near(trace.sine_waves, floats("hift_sine_waves.npy"), 1e-6));
  EXPECT_TRUE(near(trace.source, floats("hift_source.npy"), 1e-6));
  EXPECT_TRUE(near(trace.stft_real, channels_last(golden::load("hift_s_stft_real.npy")), 1e-5));
  EXPECT_TRUE(near(trace.stft_imag, channels_last(golden::load("hift_s_stft_imag.npy")), 1e-5));
  EXPECT_TRUE(
      near(trace.conv_post_out, channels_last(golden::load("hift_conv_post_out.npy")), 5e-4));
  EXPECT_TRUE(near(trace.istft_out, floats("hift_istft_out.npy"), 1e-4));
  EXPECT_TRUE(near(c.speech, floats("hift_speech.npy"), 1e-4));
}

TEST_F(GoldenHift, EndToEndWaveformFromTheE2eMel) {
  if (!golden::has("e2e_mel.npy")) GTEST_SKIP() << "no end-to-end case in this fixture set";
  const Tensor mel_t = golden::load("e2e_mel.npy");
  TorchGenerator rng(300);
  const auto speech = hift_->vocode(channels_last(mel_t), mel_t.dim(2), rng);
  EXPECT_TRUE(sounds_near(speech, floats("e2e_speech.npy"),
                          f0_drift_envelope(*hift_, channels_last(mel_t), mel_t.dim(2), 300)));
}

// The waveform criterion passes a phase drift and fails a defect. The official F0 moved by a
// few ulps (more than ours differs from it) stays within the envelope; one wrong weight, two
// harmonics swapped in the source or a wrong seed fall outside it, by far.
TEST_F(GoldenHift, WaveformCriterionSeparatesPhaseDriftFromDefects) {
  if (!golden::has("hift_mel.npy")) GTEST_SKIP() << "no single HiFT case in this fixture set";
  const Tensor mel_t = golden::load("hift_mel.npy");
  const auto mel = channels_last(mel_t);
  const auto want = floats("hift_speech.npy");
  const auto envelope = f0_drift_envelope(*hift_, mel, mel_t.dim(2), 100);
  const auto official_f0 = floats("hift_f0.npy");
  for (const int ulps : {1, 4, 12}) {
    SingleCase c;
    c.injected_f0 = official_f0;
    for (size_t i = 0; i < c.injected_f0.size(); ++i) {  // alternating up and down
      for (int k = 0; k < ulps; ++k) {
        c.injected_f0[i] = std::nextafter(c.injected_f0[i], i % 2 != 0 ? 1e30f : -1e30f);
      }
    }
    run_single_case(*hift_, c);
    EXPECT_TRUE(sounds_near(c.speech, want, envelope)) << "official F0 +-" << ulps << " ulps";
  }
  // Two harmonics of the source swapped: the source rebuilt from the official sines.
  SingleCase traced;
  traced.injected_f0 = official_f0;
  run_single_case(*hift_, traced);
  const auto w = folder_->hift.at("m_source.l_linear.weight").to_float_vector();
  const float b = folder_->hift.at("m_source.l_linear.bias").to_float_vector().at(0);
  const size_t harmonics = w.size(), samples = traced.trace.sine_waves.size() / harmonics;
  ASSERT_GE(harmonics, 3u);
  SingleCase swapped;
  swapped.injected_source.resize(samples);
  for (size_t n = 0; n < samples; ++n) {
    double sum = b;
    for (size_t h = 0; h < harmonics; ++h) {
      const size_t from = h == 1 ? 2 : h == 2 ? 1 : h;
      sum += w[h] * traced.trace.sine_waves[n * harmonics + from];
    }
    swapped.injected_source[n] = static_cast<float>(std::tanh(sum));
  }
  run_single_case(*hift_, swapped);
  EXPECT_FALSE(sounds_near(swapped.speech, want, envelope)) << "harmonics 1 and 2 swapped";
  // One weight of the first source downsampling conv moved by its tensor's largest value.
  StateDict broken;
  bool changed = false;
  for (const auto& name : folder_->hift.names()) {
    const Tensor& t = folder_->hift.at(name);
    if (changed || name.rfind("source_downs.0.", 0) != 0 || t.numel() < 2) {
      broken.add(name, t);
      continue;
    }
    auto v = t.to_float_vector();
    float top = 0;
    for (const float x : v) top = std::max(top, std::fabs(x));
    v[v.size() / 2] += top;
    Tensor copy = Tensor::zeros(DType::F32, t.shape());
    std::copy(v.begin(), v.end(), copy.mutable_data<float>());
    broken.add(name, copy);
    changed = true;
  }
  ASSERT_TRUE(changed);
  const HiftVocoder broken_hift(*backend_, folder_->config.hift, broken);
  SingleCase wrong_weight;
  run_single_case(broken_hift, wrong_weight);
  EXPECT_FALSE(sounds_near(wrong_weight.speech, want, envelope)) << "one wrong weight";
  // Another seed: other initial phases and noise.
  TorchGenerator rng(101);
  EXPECT_FALSE(sounds_near(hift_->vocode(mel, mel_t.dim(2), rng), want, envelope)) << "seed 101";
}

}  // namespace
}  // namespace cosy

namespace cosy {
namespace {

// The stream{k}_* cases: chunk k's new mel frames are the tail of its flow mel.
struct StreamCase {
  int chunks = 0;
  std::vector<std::vector<int32_t>> schedule;  // rows of stream_schedule
};
StreamCase stream_case() {
  StreamCase c;
  if (!golden::has("stream_schedule.npy")) return c;
  const Tensor s = golden::load("stream_schedule.npy");
  const auto v = s.to_int_vector();
  c.chunks = static_cast<int>(s.dim(0));
  for (int k = 0; k < c.chunks; ++k) {
    c.schedule.emplace_back(v.begin() + k * s.dim(1), v.begin() + (k + 1) * s.dim(1));
  }
  return c;
}

TEST_F(GoldenHift, StreamingChunkByChunk) {
  const StreamCase sc = stream_case();
  if (sc.chunks == 0) GTEST_SKIP() << "no streaming case in this fixture set";
  HiftStream stream(*hift_, 0);
  std::vector<float> all;
  SpectralDistance envelope;
  for (int k = 0; k < sc.chunks; ++k) {
    const std::string p = "stream" + std::to_string(k) + "_";
    const Tensor flow_mel = golden::load(p + "flow_mel.npy");
    const auto full = channels_last(flow_mel);
    const int64_t hift_frames = sc.schedule[size_t(k)][3];
    const int64_t fresh = hift_frames - (k == 0 ? 0 : stream.cache_frames());
    const int64_t ch = flow_mel.dim(1);
    const std::span<const float> mel(full.data() + (flow_mel.dim(2) - fresh) * ch,
                                     size_t(fresh * ch));
    stream.generator().manual_seed(uint64_t(sc.schedule[size_t(k)][6]));
    std::vector<float> out, hift_mel, cache_source, raw;
    HiftStream::Step st;
    st.stream = &stream;
    st.mel = mel;
    st.frames = fresh;
    st.finalize = sc.schedule[size_t(k)][1] != 0;
    st.out = &out;
    st.hift_mel = &hift_mel;
    st.cache_source = &cache_source;
    st.raw_speech = &raw;
    HiftStream::step(*hift_, {&st, 1});
    EXPECT_EQ(hift_mel, channels_last(golden::load(p + "hift_mel.npy"))) << "chunk " << k;
    EXPECT_TRUE(near(cache_source, floats(p + "hift_cache_source.npy"), kLongSourceTolerance))
        << "chunk " << k;
    EXPECT_EQ(int64_t(out.size()), sc.schedule[size_t(k)][5]) << "chunk " << k;
    // The waveform carries the F0 → phase drift (waveform_fidelity.h): held to the drift
    // envelope of this chunk's vocoder call.
    const auto chunk_envelope = f0_drift_envelope(*hift_, hift_mel, int64_t(hift_mel.size()) / ch,
                                                  uint64_t(sc.schedule[size_t(k)][6]));
    envelope = golden::widest(envelope, chunk_envelope);
    EXPECT_TRUE(sounds_near(raw, floats(p + "hift_speech.npy"), chunk_envelope)) << "chunk " << k;
    EXPECT_TRUE(sounds_near(out, floats(p + "out.npy"), chunk_envelope)) << "chunk " << k;
    all.insert(all.end(), out.begin(), out.end());
  }
  EXPECT_TRUE(stream.finished());
  if (golden::has("stream_speech.npy")) {
    EXPECT_TRUE(sounds_near(all, floats("stream_speech.npy"), envelope));
  }
}

// The cross-fade, hold-back and caches, driven with the official vocoder output: exact.
TEST_F(GoldenHift, StreamingPostProcessingIsExactOnTheOfficialChunks) {
  const StreamCase sc = stream_case();
  if (sc.chunks == 0) GTEST_SKIP() << "no streaming case in this fixture set";
  HiftStream stream(*hift_, 0);
  for (int k = 0; k < sc.chunks; ++k) {
    const std::string p = "stream" + std::to_string(k) + "_";
    const auto raw = floats(p + "hift_speech.npy");
    // Chunk k+1's cache_source is the tail of chunk k's source.
    std::vector<float> source(raw.size(), 0.0f);
    const std::string next = "stream" + std::to_string(k + 1) + "_hift_cache_source.npy";
    if (golden::has(next)) {
      const auto tail = floats(next);
      std::copy(tail.begin(), tail.end(), source.end() - std::ptrdiff_t(tail.size()));
    }
    std::vector<float> out;
    stream.absorb(channels_last(golden::load(p + "hift_mel.npy")), source, raw,
                  sc.schedule[size_t(k)][1] != 0, out);
    EXPECT_TRUE(near(out, floats(p + "out.npy"), 1e-6)) << "chunk " << k;
  }
}

// A batch of streams at different positions equals each stream run alone.
TEST_F(GoldenHift, BatchedStreamsEqualSeparateRuns) {
  if (!golden::has("hift_mel.npy")) GTEST_SKIP() << "no single HiFT case in this fixture set";
  const Tensor mel_t = golden::load("hift_mel.npy");
  const auto mel = channels_last(mel_t);
  const int64_t ch = mel_t.dim(1), frames = mel_t.dim(2);
  auto run = [&](bool batched) {
    std::vector<HiftStream> streams;
    for (int i = 0; i < 3; ++i) streams.emplace_back(*hift_, 1000 + i);
    std::vector<std::vector<float>> outs(3);
    // Stream i takes chunks of 9 + 3i frames, so they drift apart.
    std::vector<int64_t> pos(3, 0);
    for (int round = 0; round < 8; ++round) {
      std::vector<HiftStream::Step> steps;
      for (int i = 0; i < 3; ++i) {
        if (streams[size_t(i)].finished()) continue;
        const int64_t take = std::min<int64_t>(9 + 3 * i, frames - pos[size_t(i)]);
        HiftStream::Step st;
        st.stream = &streams[size_t(i)];
        st.mel = std::span<const float>(mel.data() + pos[size_t(i)] * ch, size_t(take * ch));
        st.frames = take;
        pos[size_t(i)] += take;
        st.finalize = pos[size_t(i)] + 8 >= frames;
        if (st.finalize && pos[size_t(i)] < frames) {  // take the rest with the final chunk
          st.mel = std::span<const float>(mel.data() + (pos[size_t(i)] - take) * ch,
                                          size_t((frames - pos[size_t(i)] + take) * ch));
          st.frames = frames - pos[size_t(i)] + take;
          pos[size_t(i)] = frames;
        }
        st.out = &outs[size_t(i)];
        steps.push_back(st);
      }
      if (steps.empty()) break;
      if (batched) {
        HiftStream::step(*hift_, steps);
      } else {
        for (auto& st : steps) HiftStream::step(*hift_, {&st, 1});
      }
    }
    return outs;
  };
  const auto a = run(true), b = run(false);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(a[size_t(i)].empty());
    EXPECT_EQ(a[size_t(i)], b[size_t(i)]) << "stream " << i;
  }
}

TEST_F(GoldenHift, BadMelIsAClearError) {
  TorchGenerator rng(1);
  const int64_t ch = hift_->config().in_channels;
  std::vector<float> mel(size_t(10 * ch), 0.1f);
  EXPECT_THROW(hift_->vocode(std::span<const float>(mel.data(), size_t(10 * (ch - 1))), 10, rng),
               Error);                                                   // wrong channels
  EXPECT_THROW(hift_->vocode(std::span<const float>(), 0, rng), Error);  // empty
  mel[123] = std::nanf("");
  EXPECT_THROW(hift_->vocode(mel, 10, rng), Error);
  mel[123] = INFINITY;
  try {
    hift_->vocode(mel, 10, rng);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

TEST_F(GoldenHift, BadInjectedF0IsAClearError) {
  TorchGenerator rng(1);
  const int64_t ch = hift_->config().in_channels;
  const std::vector<float> mel(size_t(10 * ch), 0.1f);
  std::vector<float> speech;
  HiftRequest r;
  r.mel = mel;
  r.frames = 10;
  r.rng = &rng;
  r.speech = &speech;
  auto message = [&](std::vector<float> f0) {
    r.injected_f0 = f0;
    try {
      hift_->vocode({&r, 1});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(std::vector<float>(9, 100.0f)).find("9 values, expected 10"),
            std::string::npos);
  std::vector<float> f0(10, 100.0f);
  f0[3] = std::nanf("");
  EXPECT_NE(message(f0).find("frame 3"), std::string::npos);
  f0[3] = -1.0f;
  EXPECT_NE(message(f0).find("not a finite value >= 0"), std::string::npos);
  f0[3] = INFINITY;
  EXPECT_NE(message(f0).find("not a finite value >= 0"), std::string::npos);
  f0[3] = 0.0f;  // unvoiced: allowed
  EXPECT_EQ(message(f0), "no error");
  EXPECT_EQ(speech.size(), size_t(10 * hift_->samples_per_frame()));
}

}  // namespace
}  // namespace cosy
