// The zero-shot frontend against the official one: every fe_* case in the fixture set,
// from its WAV file through the public API, stage by stage (fixture README, "Speech
// frontend"). Cases are found from the fe_*_prompt.wav files present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/file_io.h"
#include "golden_util.h"
#include "io/hyperpyyaml.h"
#include "model/model_folder.h"
#include "model/voice/voice_frontend.h"

namespace cosy::golden {
namespace {

using voice::Matrix;

std::vector<std::string> frontend_cases() {
  std::vector<std::string> names;
  if (!std::filesystem::is_directory(cases())) return names;
  for (const auto& e : std::filesystem::directory_iterator(cases())) {
    const std::string f = e.path().filename().string();
    const std::string suffix = "_prompt.wav";
    if (f.rfind("fe_", 0) == 0 && f.size() > suffix.size() && f.ends_with(suffix)) {
      names.push_back(f.substr(3, f.size() - 3 - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

const voice::VoiceFrontend& frontend() {
  static const voice::VoiceFrontend fe = [] {
    ModelFolder folder = load_model_folder(model_dir());
    return voice::VoiceFrontend(model_dir(), folder.config);
  }();
  return fe;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

TEST(GoldenFrontend, FilterbanksAreTheOfficialOnes) {
  if (!has("fe_whisper_mel_filters.npy")) GTEST_SKIP() << "no frontend constant tables in this set";
  const Tensor whisper = load("fe_whisper_mel_filters.npy");
  Matrix ours = voice::slaney_mel_filters(16000, 400, static_cast<int>(whisper.dim(0)), 0, 8000);
  EXPECT_TRUE(near(ours.data, whisper.to_float_vector(), 1e-7));
  const Tensor kaldi = load("fe_kaldi_mel_banks.npy");
  const int bins = static_cast<int>(kaldi.dim(0));
  Matrix banks = voice::kaldi_mel_banks(bins, 512, 16000, 20, 0);
  // torch evaluates the bin edges' mel values in float32 with its own vectorised log: a few
  // ulps of the largest mel value (8 kHz), relative to one bin's width in mel.
  const double mel_top = 1127.0 * std::log(1.0 + 8000.0 / 700.0);
  const double bin_width = (mel_top - 1127.0 * std::log(1.0 + 20.0 / 700.0)) / (bins + 1);
  EXPECT_TRUE(near(banks.data, kaldi.to_float_vector(), 8 * 1.1920929e-7 * mel_top / bin_width));
}

TEST(GoldenFrontend, EveryCaseFromItsRecording) {
  const std::vector<std::string> names = frontend_cases();
  ASSERT_FALSE(names.empty()) << "no fe_*_prompt.wav in " << cases();
  for (const std::string& name : names) {
    SCOPED_TRACE("fe_" + name);
    const std::string pre = "fe_" + name + "_";
    const std::string wav = read_whole_file(cases() / (pre + "prompt.wav"));
    const voice::PromptAnalysis p =
        frontend().analyze(std::as_bytes(std::span(wav.data(), wav.size())), pre + "prompt.wav");
    const std::vector<int32_t> lengths = ints(pre + "lengths.npy");
    // [file rate, channels, N, N16, F, T, Tf, N24, Tm, L]
    EXPECT_EQ(p.input_rate, lengths[0]);
    EXPECT_EQ(static_cast<int64_t>(p.wave.size()), lengths[2]);
    EXPECT_EQ(static_cast<int64_t>(p.wave16k.size()), lengths[3]);
    EXPECT_EQ(p.whisper_mel.cols, lengths[4]);
    EXPECT_EQ(static_cast<int64_t>(p.tokens.size()), lengths[5]);
    EXPECT_EQ(p.fbank.rows, lengths[6]);
    EXPECT_EQ(static_cast<int64_t>(p.wave24k.size()), lengths[7]);
    EXPECT_EQ(p.speech_feat.rows, lengths[8]);
    EXPECT_EQ(p.prompt_tokens, lengths[9]);

    // The channel mean of 16-bit samples is exact; resampling is float32 arithmetic.
    EXPECT_TRUE(near(p.wave, floats(pre + "wave.npy"), 0.0));
    EXPECT_TRUE(near(p.wave16k, floats(pre + "wave16k.npy"), 1e-6));
    EXPECT_TRUE(near(p.wave24k, floats(pre + "wave24k.npy"), 1e-6));
    EXPECT_TRUE(near(p.whisper_mel.data, floats(pre + "whisper_mel.npy"), 1e-4));
    EXPECT_EQ(ints(pre + "feats_length.npy")[0], p.whisper_mel.cols);
    // fbank bins next to the log(float32 eps) floor carry float32 FFT round-off (README).
    EXPECT_TRUE(near(p.fbank.data, floats(pre + "fbank.npy"), 1e-3));
    EXPECT_TRUE(near(p.campplus_input.data, floats(pre + "campplus_input.npy"), 1e-3));
    EXPECT_TRUE(near(p.speech_feat.data, floats(pre + "speech_feat.npy"), 5e-4));
    EXPECT_EQ(p.tokens, ints(pre + "tokens.npy"));
    EXPECT_EQ(p.prompt_speech_token(), ints(pre + "prompt_speech_token.npy"));
    EXPECT_TRUE(near(p.prompt_speech_feat().data, floats(pre + "prompt_speech_feat.npy"), 5e-4));
    // The embedding from the WAV: the fbank floor bins propagate (README: 3e-3 at |e| ≤ 28,
    // i.e. about 1e-4 of the embedding's largest magnitude).
    const std::vector<float> want = floats(pre + "embedding.npy");
    EXPECT_TRUE(near(p.embedding, want, 1.1e-4 * std::max(1.0f, max_abs(want))));
  }
}

TEST(GoldenFrontend, TheOnnxModelsOnTheDumpedFeatures) {
  ModelFolder folder = load_model_folder(model_dir());
  voice::SpeechTokenizer tokenizer(model_dir() / voice::kSpeechTokenizerFile);
  voice::SpeakerEncoder speaker(model_dir() / voice::kSpeakerEncoderFile);
  for (const std::string& name : frontend_cases()) {
    SCOPED_TRACE("fe_" + name);
    const std::string pre = "fe_" + name + "_";
    const Tensor mel = load(pre + "whisper_mel.npy");
    Matrix m{mel.dim(1), mel.dim(2), mel.to_float_vector()};
    EXPECT_EQ(tokenizer.tokens(m), ints(pre + "tokens.npy"));
    const Tensor in = load(pre + "campplus_input.npy");
    Matrix f{in.dim(1), in.dim(2), in.to_float_vector()};
    // README: 2e-4 at |e| ≤ 28 given CAM++'s own input (about 7e-6 of the largest magnitude).
    const std::vector<float> want = floats(pre + "embedding.npy");
    EXPECT_TRUE(near(speaker.embed(f), want, 7e-6 * std::max(1.0f, max_abs(want))));
  }
}

}  // namespace
}  // namespace cosy::golden
