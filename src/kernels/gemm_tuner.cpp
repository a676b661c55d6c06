#include "kernels/gemm_tuner.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/machine_limits.h"

namespace cosy::cpu {

std::vector<int64_t> timed_row_counts(int64_t recorded_rows, int64_t max_rows) {
  const int64_t rows = std::min(recorded_rows, max_rows);
  if (rows > kGemmStreamRows) return {rows};
  std::vector<int64_t> counts{1, 4, kGemmStreamRows, rows};
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  return counts;
}

TunedGemm tune_gemm(ThreadPool& pool, const GemmShape& shape, const RecordedGemm& recorded,
                    const GemmTuneOptions& options) {
  const int64_t k = shape.taps * shape.tap_width;
  if (shape.n <= 0 || shape.taps <= 0 || shape.tap_width <= 0 || recorded.rows <= 0) {
    fail("tune_gemm: empty shape");
  }
  const int64_t rows = std::min(recorded.rows, options.max_rows);
  // A's geometry as the model ran it (an implicit im2col for a convolution), or dense.
  const int64_t row_stride = recorded.row_stride > 0 ? recorded.row_stride : k;
  const int64_t tap_stride = shape.taps > 1 ? recorded.tap_stride : 0;
  const std::vector<int64_t> counts = timed_row_counts(recorded.rows, options.max_rows);
  const int64_t a_size =
      (counts.back() - 1) * row_stride + (shape.taps - 1) * tap_stride + shape.tap_width;

  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(a_size));
  for (float& v : a) v = dist(rng);
  std::vector<float> weights(static_cast<size_t>(shape.n * k)), bias(static_cast<size_t>(shape.n));
  for (float& v : weights) v = dist(rng);
  for (float& v : bias) v = dist(rng);
  // Few-row (decode) shapes are bound by reading the weights from memory: enough copies to
  // cycle through 256 MB, so that they come from DRAM as a model's do, not from the caches.
  std::vector<std::unique_ptr<PackedWeight>> copies;
  const auto pack = [&] {
    return std::make_unique<PackedWeight>(shape.n, k, shape.format, [&](int64_t n, int64_t kk) {
      return weights[static_cast<size_t>(n * k + kk)];
    });
  };
  copies.push_back(pack());
  if (rows <= kGemmStreamRows) {
    const size_t bytes = std::max<size_t>(1, copies[0]->bytes());
    const size_t wanted = std::min<size_t>(64, (size_t{256} << 20) / bytes);
    while (copies.size() < wanted) copies.push_back(pack());
  }
  const PackedWeight& w = *copies[0];
  size_t next = 0;
  std::vector<float> c(static_cast<size_t>(counts.back() * shape.n));
  const GemmEpilogue epi{bias.data(), false};

  TunedGemm out;
  out.shape = shape;
  out.rows = counts.back();
  std::vector<std::vector<float>> expected(counts.size());
  for (const GemmKernel kernel : gemm_kernels_for(shape.format, shape.regime)) {
    double seconds = 0.0;
    for (size_t i = 0; i < counts.size(); ++i) {
      const GemmProblem p{{a.data(), row_stride, shape.taps, tap_stride, shape.tap_width},
                          counts[i],
                          c.data(),
                          shape.n};
      const size_t values = static_cast<size_t>(counts[i] * shape.n);
      std::fill(c.begin(), c.end(), 0.0f);
      gemm_with_kernel(pool, {&p, 1}, w, epi, kernel);
      if (kernel == GemmKernel::Avx2) {
        expected[i].assign(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(values));
      } else if (std::memcmp(c.data(), expected[i].data(), values * sizeof(float)) != 0) {
        fail("GEMM kernel ", gemm_kernel_name(kernel), " differs from ",
             gemm_kernel_name(GemmKernel::Avx2), " on ", weight_format_name(shape.format),
             " N=", shape.n, " K=", shape.taps, "x", shape.tap_width, " M=", counts[i]);
      }
      seconds += bench::time_best(
          [&] {
            gemm_with_kernel(pool, {&p, 1}, *copies[next], epi, kernel);
            next = (next + 1) % copies.size();
          },
          options.seconds_per_kernel);
    }
    out.seconds[kernel] = seconds;
  }
  out.kernel = GemmKernel::Avx2;
  const double base = out.seconds.at(GemmKernel::Avx2);
  double best = base;
  for (const auto& [kernel, s] : out.seconds) {
    if (kernel != GemmKernel::Avx2 && s < best && s <= base * (1.0 - options.min_gain)) {
      best = s;
      out.kernel = kernel;
    }
  }
  return out;
}

}  // namespace cosy::cpu
