// The torch-compatible generator against every random draw the fixtures dump. Seeds follow
// the fixture format (cases/README.md): rng_seed<S>_*, 100 for the single HiFT case, the
// stream schedule's seed column, 300 for the end-to-end run, and torch.manual_seed(0) for
// the flow's fixed noise. Cases are found from the files present.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "core/test_support.h"
#include "core/torch_generator.h"
#include "io/npy.h"
#include "model/model_folder.h"

namespace cosy {
namespace {

namespace fs = std::filesystem;

fs::path cases() { return cosy::testing::golden_dir() / "cases"; }

TEST(GoldenRng, SeededRandThenRandnContinueTheSameStream) {
  const std::regex rand_name(R"(rng_seed(\d+)_rand_.*\.npy)");
  int found = 0;
  for (const auto& e : fs::directory_iterator(cases())) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, rand_name)) continue;
    ++found;
    TorchGenerator g(std::stoull(m[1]));
    const Tensor expected = load_npy(e.path());
    EXPECT_EQ(g.rand(expected.shape()).to_float_vector(), expected.to_float_vector())
        << name;  // bit-exact
    for (const auto& f : fs::directory_iterator(cases())) {
      const std::string then = f.path().filename().string();
      if (then.rfind("rng_seed" + std::string(m[1]) + "_then_randn_", 0) != 0) continue;
      const Tensor want = load_npy(f.path());
      EXPECT_EQ(g.randn(want.shape()).to_float_vector(), want.to_float_vector())
          << then;  // bit-exact
    }
  }
  if (found == 0) GTEST_SKIP() << "no rng_seed*_rand_* cases";
}

struct HiftDraw {
  std::string prefix;  // "hift", "stream0", "e2e"
  uint64_t seed;
  int64_t frames;  // mel frames of the call (draw 2 has samples_per_frame * frames rows)
};

std::vector<HiftDraw> hift_draws() {
  std::vector<HiftDraw> draws;
  if (fs::exists(cases() / "hift_rand_ini.npy") &&
      fs::exists(cases() / "hift_sine_noise_randn.npy")) {
    draws.push_back({"hift", 100, -1});
  }
  if (fs::exists(cases() / "stream_schedule.npy")) {
    const Tensor s = load_npy(cases() / "stream_schedule.npy");
    const auto v = s.to_int_vector();
    for (int64_t k = 0; k < s.dim(0); ++k) {
      draws.push_back({"stream" + std::to_string(k), static_cast<uint64_t>(v[k * s.dim(1) + 6]),
                       v[k * s.dim(1) + 3]});
    }
  }
  if (fs::exists(cases() / "e2e_rand_ini.npy") && fs::exists(cases() / "e2e_mel.npy")) {
    draws.push_back({"e2e", 300, load_npy(cases() / "e2e_mel.npy").shape().back()});
  }
  return draws;
}

TEST(GoldenRng, HiftPhasesAndSineNoiseFromTheirSeeds) {
  const ModelConfig config = load_model_config(cosy::testing::golden_dir() / "model");
  const int64_t harmonics = config.hift.nb_harmonics + 1;
  const auto draws = hift_draws();
  if (draws.empty()) GTEST_SKIP() << "no HiFT draws in this fixture set";
  for (const HiftDraw& d : draws) {
    if (!fs::exists(cases() / (d.prefix + "_rand_ini.npy"))) continue;
    TorchGenerator g(d.seed);
    // Draw 1: initial phases, column 0 zeroed by the official code.
    auto phases = g.rand({1, harmonics}).to_float_vector();
    phases[0] = 0;
    EXPECT_EQ(phases, load_npy(cases() / (d.prefix + "_rand_ini.npy")).to_float_vector())
        << d.prefix;
    // Draw 2: randn_like of the sine waves, a transposed [1, rows, harmonics] view, so torch
    // fills it in memory order (harmonic-major) through its serial path. Bit-exact.
    const fs::path full = cases() / (d.prefix + "_sine_noise_randn.npy");
    const fs::path head = cases() / (d.prefix + "_sine_noise_head.npy");
    const Tensor want = load_npy(fs::exists(full) ? full : head);
    const int64_t rows =
        d.frames > 0 ? d.frames * config.hift.samples_per_frame() : want.numel() / harmonics;
    std::vector<float> memory(static_cast<size_t>(rows * harmonics));
    g.normal_serial(memory);
    const auto w = want.to_float_vector();
    ASSERT_EQ(static_cast<int64_t>(w.size()) % harmonics, 0);
    for (int64_t t = 0; t < static_cast<int64_t>(w.size()) / harmonics; ++t) {
      for (int64_t h = 0; h < harmonics; ++h) {
        ASSERT_EQ(memory[h * rows + t], w[t * harmonics + h])
            << d.prefix << " row " << t << " harmonic " << h;
      }
    }
  }
}

TEST(GoldenRng, FlowFixedNoiseFromSeedZero) {
  const ModelConfig config = load_model_config(cosy::testing::golden_dir() / "model");
  const int64_t mels = config.flow.output_size;
  constexpr int64_t kNoiseFrames = 15000;  // CausalConditionalCFM draws randn(1, 80, 15000) once
  TorchGenerator g(0);
  const auto noise = g.randn({1, mels, kNoiseFrames}).to_float_vector();
  int checked = 0;
  for (const char* name : {"flow_noise.npy", "flow_noise_all.npy"}) {
    if (!fs::exists(cases() / name)) continue;
    const Tensor want = load_npy(cases() / name);
    const int64_t t = want.shape().back();
    const auto w = want.to_float_vector();
    for (int64_t c = 0; c < mels; ++c) {
      for (int64_t i = 0; i < t; ++i) {
        ASSERT_EQ(noise[c * kNoiseFrames + i], w[c * t + i])
            << name << " mel " << c << " frame " << i;  // bit-exact
      }
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no flow noise in this fixture set";
}

}  // namespace
}  // namespace cosy
