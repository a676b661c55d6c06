// A port of torch's default CPU generator (x86-64 AVX2 builds) for the draws CosyVoice2
// makes: mt19937 seeded as torch.manual_seed does, torch.rand and torch.randn (float32). With it a
// request seeded like the official code gets the official code's noise. One generator per request:
// it is not thread-safe, and nothing in it is global.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "core/tensor.h"

namespace cosy {

class TorchGenerator {
 public:
  explicit TorchGenerator(uint64_t seed = 67280421310721ull);  // torch's default seed

  // torch.manual_seed(seed): only the low 32 bits seed the mt19937 state.
  void manual_seed(uint64_t seed);
  uint32_t next_u32();

  // torch.rand: uniforms in [0, 1) with 24 random bits each, in memory order.
  void rand(std::span<float> out);
  // torch.randn into a contiguous float32 tensor. From 16 elements torch uses a vectorised
  // Box-Muller in blocks of 16 with float32 AVX2 log/sin/cos; we evaluate the same float32
  // polynomials, so the values are bit-exact. Below 16 it uses the serial path below.
  void randn(std::span<float> out);
  // torch's serial normal path (at::normal_distribution<double>), which torch takes for
  // fewer than 16 elements and for any non-contiguous tensor, filling it in memory order.
  // randn_like of a transposed tensor (HiFT's SineGen2 noise) lands here. Bit-exact. Each
  // call to Box-Muller yields two values; the second is kept for the next draw, as torch
  // keeps it in the generator.
  void normal_serial(std::span<float> out_in_memory_order);

  Tensor rand(const Shape& shape);
  Tensor randn(const Shape& shape);

 private:
  static constexpr int kStateSize = 624;
  void twist();

  uint64_t next_u64();
  double next_double();  // uniform in [0, 1) with 53 random bits

  std::array<uint32_t, kStateSize> state_{};
  int index_ = kStateSize;
  std::optional<double> cached_normal_;
};

}  // namespace cosy
