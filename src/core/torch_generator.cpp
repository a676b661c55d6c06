#include "core/torch_generator.h"

#include <algorithm>
#include <bit>
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

// float32 log and sin/cos as torch's AVX2 build evaluates them (the Cephes polynomials of
// avx_mathfun, with the multiply-adds the compiler fuses there fused here too). This file
// is compiled with -ffp-contract=off so that only these explicit std::fma calls fuse.
float cephes_logf(float x) {
  x = std::max(x, std::bit_cast<float>(0x00800000u));  // smallest normal
  const int32_t exponent = static_cast<int32_t>(std::bit_cast<uint32_t>(x) >> 23) - 0x7f;
  x = std::bit_cast<float>((std::bit_cast<uint32_t>(x) & ~0x7f800000u) |
                           std::bit_cast<uint32_t>(0.5F));
  float e = static_cast<float>(exponent) + 1.0F;
  const bool below_sqrt_half = x < 0.707106781186547524F;
  const float tmp = below_sqrt_half ? x : 0.0F;
  x = x - 1.0F;
  e = e - (below_sqrt_half ? 1.0F : 0.0F);
  x = x + tmp;
  const float z = x * x;
  float y = 7.0376836292E-2F;
  for (float p : {-1.1514610310E-1F, 1.1676998740E-1F, -1.2420140846E-1F, 1.4249322787E-1F,
                  -1.6668057665E-1F, 2.0000714765E-1F, -2.4999993993E-1F, 3.3333331174E-1F}) {
    y = std::fma(y, x, p);
  }
  y = y * x;
  y = std::fma(y, z, e * -2.12194440e-4F);
  y = std::fma(z, -0.5F, y);
  x = x + y;
  return std::fma(e, 0.693359375F, x);
}

void cephes_sincosf(float x, float& sin_out, float& cos_out) {
  uint32_t sign_sin = std::bit_cast<uint32_t>(x) & 0x80000000u;
  x = std::fabs(x);
  int32_t octant = static_cast<int32_t>(x * 1.27323954473516F);  // x * 4/pi, truncated
  octant = (octant + 1) & ~1;
  const float y = static_cast<float>(octant);
  sign_sin ^= static_cast<uint32_t>((octant & 4) << 29);
  const bool swap = (octant & 2) != 0;  // sin and cos polynomials trade places
  x = std::fma(y, -0.78515625F, x);     // x - y*pi/4 in three parts
  x = std::fma(y, -2.4187564849853515625e-4F, x);
  x = std::fma(y, -3.77489497744594108e-8F, x);
  const uint32_t sign_cos = static_cast<uint32_t>(~(octant - 2) & 4) << 29;
  const float z = x * x;
  float c = 2.443315711809948E-005F;
  c = std::fma(c, z, -1.388731625493765E-003F);
  c = std::fma(c, z, 4.166664568298827E-002F);
  c = c * z;
  c = std::fma(c, z, -(z * 0.5F));
  c = c + 1.0F;
  float s = -1.9515295891E-4F;
  s = std::fma(s, z, 8.3321608736E-3F);
  s = std::fma(s, z, -1.6666654611E-1F);
  s = s * z;
  s = std::fma(s, x, x);
  sin_out = std::bit_cast<float>(std::bit_cast<uint32_t>(swap ? c : s) ^ sign_sin);
  cos_out = std::bit_cast<float>(std::bit_cast<uint32_t>(swap ? s : c) ^ sign_cos);
}

// aten's normal_fill_16: the first 8 uniforms give radii, the next 8 angles.
void box_muller_16(float* d) {
  const auto two_pi = static_cast<float>(2.0 * std::numbers::pi);
  for (int j = 0; j < 8; ++j) {
    const float radius = std::sqrt(-2.0F * cephes_logf(1.0F - d[j]));
    float sin_theta, cos_theta;
    cephes_sincosf(two_pi * d[j + 8], sin_theta, cos_theta);
    d[j] = radius * cos_theta;
    d[j + 8] = radius * sin_theta;
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
