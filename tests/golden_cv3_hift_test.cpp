// CosyVoice3's vocoder (CausalHiFTGenerator) against the official code's fixtures: the fixed
// construction-time buffers (for the fixture model and the released one), a final call down
// to every intermediate, and a non-final call with its held-back frames.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "model/hift/causal_hift.h"
#include "model/hift/causal_hift_stream.h"
#include "model/hift/hift_source.h"
#include "model/model_folder.h"

namespace cosy {
namespace {

using golden::near;

// The waveform (fixture README: 1e-4 abs; the F0 predictor runs in float64 here as there).
constexpr double kWaveTolerance = 1e-4;

golden::FixtureSet set() { return golden::cosyvoice3_set(); }
std::vector<float> floats(const std::string& name) { return set().floats(name); }
std::vector<float> channels_last(const std::string& name) {
  return golden::channels_last(set().load(name));
}

class GoldenCv3Hift : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.llm = opt.flow = false;
    folder_ = new ModelFolder(load_model_folder(set().model_dir(), opt));
    hift_ = new CausalHiftVocoder(*backend_, folder_->config.hift, folder_->hift,
                                  causal_hift_noise_offset(folder_->config));
  }
  static void TearDownTestSuite() {
    delete hift_;
    delete folder_;
    delete backend_;
  }
  // Mel channels and harmonics, from the fixture model's config.
  static int64_t mel_ch() { return folder_->config.hift.in_channels; }
  static int64_t harmonics() { return folder_->config.hift.nb_harmonics + 1; }
  struct Call {
    std::vector<float> mel, speech;
    CausalHiftTrace trace;
  };
  static Call run(const std::string& mel_name, bool finalize, int64_t frames = -1) {
    Call c;
    c.mel = channels_last(mel_name);
    const int64_t all = static_cast<int64_t>(c.mel.size()) / mel_ch();
    if (frames < 0) frames = all;
    c.mel.resize(static_cast<size_t>(frames * mel_ch()));
    CausalHiftRequest r;
    r.mel = c.mel;
    r.frames = frames;
    r.finalize = finalize;
    r.speech = &c.speech;
    r.trace = &c.trace;
    hift_->vocode({&r, 1});
    return c;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static CausalHiftVocoder* hift_;
};
Backend* GoldenCv3Hift::backend_ = nullptr;
ModelFolder* GoldenCv3Hift::folder_ = nullptr;
CausalHiftVocoder* GoldenCv3Hift::hift_ = nullptr;

// The buffers start where the official construction leaves the global generator: the count
// derived from the config equals the fixture's, and the draws equal torch's bit for bit.
TEST_F(GoldenCv3Hift, FixedBuffersAreTheOfficialDraws) {
  std::ifstream in(set().cases() / "stats.json");
  ASSERT_TRUE(in) << "stats.json";
  const auto stats = nlohmann::json::parse(in);
  EXPECT_EQ(causal_hift_noise_offset(folder_->config),
            stats.at("hift_noise_mt19937_offset").get<int64_t>());
  const auto ini = hift_->rand_ini();
  EXPECT_EQ(std::vector<float>(ini.begin(), ini.end()), floats("hift_rand_ini.npy"));
  const auto want = floats("hift_noise_sine.npy");
  const auto got = hift_->source_noise(static_cast<int64_t>(want.size()) / harmonics());
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);
}

// The released Fun-CosyVoice3-0.5B: its sizes give the documented offset, and its buffers'
// head equals the fixture drawn from the official full-size construction.
TEST_F(GoldenCv3Hift, FixedBuffersOfTheReleasedModel) {
  ModelConfig real = folder_->config;
  real.flow.vocab_size = 6561;
  real.flow.input_size = real.flow.output_size = 80;
  real.flow.spk_embed_dim = 192;
  real.hift.f0_predictor.cond_channels = 512;
  const int64_t offset = causal_hift_noise_offset(real);
  EXPECT_EQ(offset, 5052961);
  const auto head = floats("real_hift_sine_noise_head.npy");
  const FixedSourceNoise noise(offset, 9, 300 * 24000);
  const auto ini = noise.rand_ini();
  EXPECT_EQ(std::vector<float>(ini.begin(), ini.end()), floats("real_hift_rand_ini.npy"));
  const auto rows = noise.rows(static_cast<int64_t>(head.size()) / 9);
  EXPECT_EQ(std::vector<float>(rows.begin(), rows.end()), head);
}

TEST_F(GoldenCv3Hift, FinalCallMatchesEveryIntermediate) {
  const Call c = run("hift_mel.npy", true);
  const CausalHiftTrace& t = c.trace;
  EXPECT_TRUE(near(t.f0, floats("hift_f0.npy"), 1e-4));
  EXPECT_TRUE(near(t.uv, floats("hift_uv.npy"), 0));
  EXPECT_TRUE(near(t.sine_waves, floats("hift_sine_waves.npy"), 1e-5));
  EXPECT_TRUE(near(t.source, floats("hift_source.npy"), 1e-5));
  EXPECT_TRUE(near(t.stft_real, channels_last("hift_s_stft_real.npy"), 1e-4));
  EXPECT_TRUE(near(t.stft_imag, channels_last("hift_s_stft_imag.npy"), 1e-4));
  EXPECT_TRUE(near(t.conv_pre_out, channels_last("hift_conv_pre_out.npy"), 1e-4));
  EXPECT_TRUE(near(t.conv_post_out, channels_last("hift_conv_post_out.npy"), 1e-3));
  EXPECT_TRUE(near(t.istft_out, floats("hift_istft_out.npy"), kWaveTolerance));
  EXPECT_TRUE(near(c.speech, floats("hift_speech.npy"), kWaveTolerance));
}

TEST_F(GoldenCv3Hift, NonFinalCallHoldsBackItsLookAhead) {
  const auto frames = static_cast<int64_t>(floats("hiftnf_f0.npy").size()) + 3;
  const Call c = run("hift_mel.npy", false, frames);
  EXPECT_TRUE(near(c.trace.f0, floats("hiftnf_f0.npy"), 1e-4));
  EXPECT_TRUE(near(c.trace.conv_pre_out, channels_last("hiftnf_conv_pre_out.npy"), 1e-4));
  EXPECT_TRUE(near(c.trace.istft_out, floats("hiftnf_istft_out.npy"), kWaveTolerance));
  EXPECT_TRUE(near(c.speech, floats("hiftnf_speech.npy"), kWaveTolerance));
  EXPECT_EQ(static_cast<int64_t>(c.speech.size()),
            (frames - hift_->held_back_frames()) * hift_->samples_per_frame());
  // What it gives is what a final call on the same mel gives first.
  const Call whole = run("hift_mel.npy", true, frames);
  const std::vector<float> prefix(
      whole.speech.begin(), whole.speech.begin() + static_cast<std::ptrdiff_t>(c.speech.size()));
  EXPECT_TRUE(near(c.speech, prefix, kWaveTolerance));
}

// The incremental vocoder: mel given a piece at a time, each call running over its new frames
// and their receptive field only, gives the whole mel's samples (to float rounding: the
// phases it carries are the whole call's double sums, bit for bit).
TEST_F(GoldenCv3Hift, StreamGivesTheWholeMelsSamples) {
  const int64_t last = [] {
    int64_t i = 0;
    while (set().has("stream" + std::to_string(i + 1) + "_hift_mel.npy")) ++i;
    return i;
  }();
  const auto mel = channels_last("stream" + std::to_string(last) + "_hift_mel.npy");
  const int64_t ch = mel_ch();
  const auto frames = static_cast<int64_t>(mel.size()) / ch;
  std::vector<float> whole;
  CausalHiftRequest r;
  r.mel = mel;
  r.frames = frames;
  r.speech = &whole;
  hift_->vocode({&r, 1});
  for (const int64_t piece : {int64_t{7}, int64_t{25}, frames}) {
    CausalHiftStream s(*hift_);
    std::vector<float> got;
    int64_t widest = 0;
    for (int64_t f = 0; f < frames; f += piece) {
      const int64_t n = std::min(piece, frames - f);
      const auto out = s.push(std::span<const float>(mel).subspan(static_cast<size_t>(f * ch),
                                                                  static_cast<size_t>(n * ch)),
                              f + n == frames);
      widest = std::max(widest, s.last_window_frames());
      got.insert(got.end(), out.begin(), out.end());
    }
    EXPECT_TRUE(near(got, whole, 1e-5)) << "pieces of " << piece;
    // Windows are bounded by the receptive field, not by the utterance.
    if (piece < frames) {
      EXPECT_LE(widest, piece + hift_->decoder_context_frames() + hift_->f0_context_frames() +
                            hift_->held_back_frames());
    }
  }
}

TEST_F(GoldenCv3Hift, BadInputIsAClearError) {
  const int64_t held = hift_->held_back_frames();
  std::vector<float> mel(static_cast<size_t>(held * mel_ch()), 0.1f), speech;
  CausalHiftRequest r;
  r.mel = mel;
  r.frames = held;
  r.finalize = false;  // every frame is held back
  r.speech = &speech;
  EXPECT_THROW(hift_->vocode({&r, 1}), Error);
  r.finalize = true;
  r.frames = held + 1;  // not the mel's size
  EXPECT_THROW(hift_->vocode({&r, 1}), Error);
  r.frames = held;
  mel[100] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(hift_->vocode({&r, 1}), Error);
}

}  // namespace
}  // namespace cosy
