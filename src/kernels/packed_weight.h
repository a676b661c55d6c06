// Weights packed for the CPU GEMM: W [N, K] becomes panels of 16 output columns, each
// panel K rows of 16 values ([N/16][K][16]), so one packed layout serves both the GEMM
// micro-kernel (two 8-wide loads per k) and the M=1 decode GEMV (a sequential stream).
// fp16 stores halves (F16C converts in the kernel); int8 stores per-output-channel
// symmetric quantised values with one float scale per column. bf16 stores each panel as
// ceil(K/2) rows of 16 (k, k+1) pairs ([N/16][K/2][16][2]), the operand layout of the
// AVX512_BF16 dot product (gemm_avx512.cpp). w8a8 stores int8's values plus 128, as
// unsigned bytes, and its scales, as ceil(K/4) rows of 16 (k..k+3) quads
// ([N/16][K/4][16][4]): the unsigned operand of VNNI's u8 × s8 dot product.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/backend.h"

namespace cosy::cpu {

inline constexpr int64_t kPanel = 16;

// Whether this CPU runs WeightFormat::BF16 (AVX512_BF16); PackedWeight refuses it if not.
bool cpu_has_bf16();
// Whether this CPU runs WeightFormat::W8A8 (AVX512-VNNI); PackedWeight refuses it if not.
bool cpu_has_vnni();

class PackedWeight final : public PreparedWeight {
 public:
  // `get(n, k)` returns W[n, k]; it is called once per element at pack time.
  PackedWeight(int64_t n, int64_t k, WeightFormat format,
               const std::function<float(int64_t, int64_t)>& get);

  int64_t out_features() const override { return n_; }
  int64_t in_features() const override { return k_; }
  WeightFormat format() const override { return format_; }
  size_t bytes() const override { return bytes_; }

  int64_t panels() const { return panels_; }
  // Panel p's K×16 block (float, uint16 half or int8, by format; bf16: K/2 × 16 pairs;
  // w8a8: K/4 × 16 quads).
  const void* panel(int64_t p) const;
  const float* scales() const { return scales_.get(); }  // I8, W8A8: [panels*16]
  size_t element_size() const;

 private:
  int64_t n_, k_, panels_;
  int64_t panel_rows_;  // stored k rows per panel: K, rounded up to bf16 pairs or w8a8 quads
  WeightFormat format_;
  size_t bytes_ = 0;
  std::unique_ptr<std::byte[], void (*)(std::byte*)> data_{nullptr, nullptr};
  std::unique_ptr<float[]> scales_;
};

const PackedWeight& as_packed(const PreparedWeight* w);

}  // namespace cosy::cpu
