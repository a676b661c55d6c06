// Fixture helpers for the golden tests: load a case array, transpose the fixtures'
// channels-first (1, C, T) layout to our channels-last [T, C], compare with a tolerance.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/test_support.h"
#include "io/npy.h"

namespace cosy::golden {

// Tolerances shared by the golden tests.
// Mel after 10 Euler steps (fixture README: 1e-3).
constexpr double kMelTolerance = 1e-3;
// Waveforms computed from the seeds alone are compared by their spectra, within an envelope
// derived per case (waveform_fidelity.h); given the official F0 or source, the decoder
// meets the fixture README's 1e-4 sample by sample.

// One fixture set: its cases/ and its model/ folder.
struct FixtureSet {
  std::filesystem::path root;
  std::filesystem::path cases() const { return root / "cases"; }
  std::filesystem::path model_dir() const { return root / "model"; }
  bool has(const std::string& name) const { return std::filesystem::exists(cases() / name); }
  Tensor load(const std::string& name) const { return load_npy(cases() / name); }
  std::vector<float> floats(const std::string& name) const { return load(name).to_float_vector(); }
  std::vector<int32_t> ints(const std::string& name) const {
    const auto v = load(name).to_int_vector();
    return {v.begin(), v.end()};
  }
};
inline FixtureSet cosyvoice2_set() { return {cosy::testing::golden_dir()}; }
inline FixtureSet cosyvoice3_set() { return {cosy::testing::golden_cv3_dir()}; }

// The CosyVoice2 set's.
inline std::filesystem::path cases() { return cosyvoice2_set().cases(); }
inline std::filesystem::path model_dir() { return cosyvoice2_set().model_dir(); }
inline bool has(const std::string& name) { return cosyvoice2_set().has(name); }
inline Tensor load(const std::string& name) { return cosyvoice2_set().load(name); }
inline std::vector<float> floats(const std::string& name) { return cosyvoice2_set().floats(name); }
inline std::vector<int32_t> ints(const std::string& name) { return cosyvoice2_set().ints(name); }

// (1, C, T) → [T, C]
inline std::vector<float> channels_last(const Tensor& t) {
  return transpose_2d(t.to_float_vector(), t.dim(t.rank() - 2), t.dim(t.rank() - 1));
}

inline ::testing::AssertionResult near(const std::vector<float>& got,
                                       const std::vector<float>& want, double tol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  }
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (worst <= tol) return ::testing::AssertionSuccess() << "max |diff| " << worst;
  return ::testing::AssertionFailure()
         << "max |diff| " << worst << " at " << at << " (got " << got[at] << ", want " << want[at]
         << "), tolerance " << tol;
}

}  // namespace cosy::golden
