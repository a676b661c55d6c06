#include "core/torch_generator.h"

#include <cmath>
#include <numbers>

namespace cosy {

TorchGenerator::TorchGenerator(uint64_t seed) { manual_seed(seed); }

void TorchGenerator::manual_seed(uint64_t seed) {
  state_[0] = static_cast<uint32_t>(seed & 0xffffffffu);
  for (int i = 1; i < kStateSize; ++i) {
    const uint32_t prev = state_[i - 1];
    state_[i] = 1812433253u * (prev ^ (prev >> 30)) + static_cast<uint32_t>(i);
  }
  index_ = kStateSize;
  cached_normal_.reset();
}

void TorchGenerator::twist() {
  constexpr int kShift = 397;
  for (int i = 0; i < kStateSize; ++i) {
    const uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % kStateSize] & 0x7fffffffu);
    uint32_t v = state_[(i + kShift) % kStateSize] ^ (y >> 1);
    if (y & 1u) v ^= 0x9908b0dfu;
    state_[i] = v;
  }
  index_ = 0;
}

uint32_t TorchGenerator::next_u32() {
  if (index_ >= kStateSize) twist();
  uint32_t y = state_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t TorchGenerator::next_u64() {
  const uint64_t hi = next_u32();
  const uint64_t lo = next_u32();
  return (hi << 32) | lo;
}

double TorchGenerator::next_double() {
  return static_cast<double>(next_u64() & ((1ull << 53) - 1)) * 0x1p-53;
}

void TorchGenerator::normal_serial(std::span<float> out) {
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
  for (float& v : out) {
    if (cached_normal_) {
      v = static_cast<float>(*cached_normal_);
      cached_normal_.reset();
      continue;
    }
    const double u1 = next_double();
    const double u2 = next_double();
    const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    const double theta = kTwoPi * u1;
    cached_normal_ = r * std::sin(theta);
    v = static_cast<float>(r * std::cos(theta));
  }
}

void TorchGenerator::rand(std::span<float> out) {
  constexpr float kScale = 1.0F / 16777216.0F;  // 2^-24
  for (float& v : out) v = static_cast<float>(next_u32() & 0xffffffu) * kScale;
}

namespace {

// aten's normal_fill_16: the first 8 uniforms give radii, the next 8 angles.
void box_muller_16(float* d) {
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
  for (int j = 0; j < 8; ++j) {
    const double u1 = static_cast<double>(1.0F - d[j]);
    const double u2 = static_cast<double>(d[j + 8]);
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = kTwoPi * u2;
    d[j] = static_cast<float>(r * std::cos(theta));
    d[j + 8] = static_cast<float>(r * std::sin(theta));
  }
}

}  // namespace

void TorchGenerator::randn(std::span<float> out) {
  const size_t n = out.size();
  if (n < 16) {
    normal_serial(out);
    return;
  }
  rand(out);
  for (size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out.data() + i);
  if (n % 16 != 0) {
    // torch redraws the last 16 and transforms them again, overwriting the overlap.
    rand(out.subspan(n - 16));
    box_muller_16(out.data() + n - 16);
  }
}

Tensor TorchGenerator::rand(const Shape& shape) {
  Tensor t = Tensor::zeros(DType::F32, shape);
  rand(std::span<float>(t.mutable_data<float>(), static_cast<size_t>(t.numel())));
  return t;
}

Tensor TorchGenerator::randn(const Shape& shape) {
  Tensor t = Tensor::zeros(DType::F32, shape);
  randn(std::span<float>(t.mutable_data<float>(), static_cast<size_t>(t.numel())));
  return t;
}

}  // namespace cosy
