// The data-movement and element-wise primitives against plain loops, through the backend
// interface (so the CPU backend's wiring is covered too), at odd sizes, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cpu_backend.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::random_vector;

class DataOps : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    backend_ = cpu::create_cpu_backend(GetParam());
    stream_ = backend_->create_stream();
  }
  Primitives& k() { return backend_->primitives(); }
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Stream> stream_;
};

TEST_P(DataOps, AxpbyCoversSumScaleAndCombination) {
  const int64_t n = 40001;  // several tasks and a ragged end
  const auto x = random_vector(size_t(n), 1), y0 = random_vector(size_t(n), 2);
  for (const auto& [alpha, beta] : {std::pair{1.0f, 1.0f}, {0.0f, 0.25f}, {1.7f, -0.3f}}) {
    auto y = y0;
    k().axpby(*stream_, alpha == 0 ? nullptr : x.data(), y.data(), n, alpha, beta);
    for (int64_t i = 0; i < n; ++i) {
      const float want = alpha * x[size_t(i)] + beta * y0[size_t(i)];
      ASSERT_NEAR(y[size_t(i)], want, 1e-6) << alpha << " " << beta << " at " << i;
    }
  }
}

TEST_P(DataOps, GatedAddScalesEachChannelIntoTheResidual) {
  const int64_t rows = 29, cols = 11;
  const auto x = random_vector(size_t(rows * cols), 5), gate = random_vector(size_t(cols), 6);
  const auto y0 = random_vector(size_t(rows * cols), 7);
  auto y = y0;
  k().gated_add(*stream_, x.data(), gate.data(), y.data(), rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = size_t(r * cols + c);
      EXPECT_FLOAT_EQ(y[i], y0[i] + gate[size_t(c)] * x[i]);
    }
  }
}

TEST_P(DataOps, AddRowBroadcastsOverRowsInPlaceOrNot) {
  const int64_t rows = 37, cols = 13;
  const auto x = random_vector(size_t(rows * cols), 3), row = random_vector(size_t(cols), 4);
  std::vector<float> y(x.size()), inplace = x;
  k().add_row(*stream_, x.data(), row.data(), y.data(), rows, cols);
  k().add_row(*stream_, inplace.data(), row.data(), inplace.data(), rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = size_t(r * cols + c);
      EXPECT_EQ(y[i], x[i] + row[size_t(c)]);
      EXPECT_EQ(inplace[i], y[i]);
    }
  }
}

TEST_P(DataOps, Copy2dStridedPackedAndBroadcast) {
  const int64_t rows = 2049, cols = 7, ld_src = 11, ld_dst = 9;
  const auto src = random_vector(size_t(rows * ld_src), 5);
  std::vector<float> dst(size_t(rows * ld_dst), -7.0f);
  k().copy_2d(*stream_, src.data() + 2, ld_src, dst.data() + 1, ld_dst, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(dst[size_t(r * ld_dst)], -7.0f);  // outside the block: untouched
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_EQ(dst[size_t(r * ld_dst + 1 + c)], src[size_t(r * ld_src + 2 + c)]);
    EXPECT_EQ(dst[size_t(r * ld_dst + 1 + cols)], -7.0f);
  }
  std::vector<float> packed(size_t(rows * cols));
  k().copy_2d(*stream_, src.data(), cols, packed.data(), cols, rows, cols);
  for (size_t i = 0; i < packed.size(); ++i) ASSERT_EQ(packed[i], src[i]);
  std::vector<float> bcast(size_t(5 * cols));
  k().copy_2d(*stream_, src.data(), 0, bcast.data(), cols, 5, cols);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(bcast[size_t(r * cols + c)], src[size_t(c)]);
}

TEST_P(DataOps, Fill2dTouchesOnlyItsBlock) {
  std::vector<float> dst(size_t(10 * 6), 1.0f);
  k().fill_2d(*stream_, dst.data() + 2, 6, 10, 3, 0.5f);
  for (int64_t r = 0; r < 10; ++r)
    for (int64_t c = 0; c < 6; ++c)
      EXPECT_EQ(dst[size_t(r * 6 + c)], (c >= 2 && c < 5) ? 0.5f : 1.0f);
}

TEST_P(DataOps, PadRowsZeroReflectReplicateAsTorch) {
  const int64_t rows = 5, cols = 3;
  std::vector<float> x(size_t(rows * cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
  // torch.nn.functional.pad over time of rows 0..4, (2, 3): which input row each output holds.
  const std::vector<std::pair<PadMode, std::vector<int>>> cases = {
      {PadMode::Zero, {-1, -1, 0, 1, 2, 3, 4, -1, -1, -1}},
      {PadMode::Reflect, {2, 1, 0, 1, 2, 3, 4, 3, 2, 1}},
      {PadMode::Replicate, {0, 0, 0, 1, 2, 3, 4, 4, 4, 4}},
  };
  for (const auto& [mode, from] : cases) {
    std::vector<float> y(from.size() * size_t(cols), -9.0f);
    k().pad_rows(*stream_, x.data(), rows, cols, y.data(), 2, 3, mode);
    for (size_t o = 0; o < from.size(); ++o) {
      for (int64_t c = 0; c < cols; ++c) {
        const float want = from[o] < 0 ? 0.0f : x[size_t(from[o] * cols + c)];
        EXPECT_EQ(y[o * size_t(cols) + size_t(c)], want) << int(mode) << " row " << o;
      }
    }
  }
  std::vector<float> y(size_t(11 * cols));
  EXPECT_THROW(k().pad_rows(*stream_, x.data(), rows, cols, y.data(), 5, 1, PadMode::Reflect),
               Error);
}

TEST_P(DataOps, GatherRowsLooksUpEachId) {
  const int64_t table_rows = 50, cols = 19;
  const auto table = random_vector(size_t(table_rows * cols), 6);
  const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
  std::vector<float> out(ids.size() * size_t(cols));
  k().gather_rows(*stream_, table.data(), cols, ids.data(), int64_t(ids.size()), out.data());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_EQ(out[i * size_t(cols) + size_t(c)], table[size_t(ids[i] * cols + c)]);
}

TEST_P(DataOps, ToHalfRoundsEachValue) {
  const auto x = random_vector(37, 7, 100.0f);
  std::vector<uint16_t> h(x.size());
  k().to_half(*stream_, x.data(), h.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(h[i], float_to_half(x[i]));
}

TEST_P(DataOps, PolarSpectrumIsHiftsHead) {
  const int64_t frames = 9, bins = 9, ld = 2 * bins + 3;
  auto x = random_vector(size_t(frames * ld), 8, 6.0f);
  x[0] = 20.0f;  // exp above the magnitude limit
  std::vector<float> re(size_t(frames * bins)), im(re.size());
  k().polar_spectrum(*stream_, x.data(), ld, frames, bins, 100.0f, re.data(), im.data());
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t b = 0; b < bins; ++b) {
      const double mag = std::min(std::exp(double(x[size_t(f * ld + b)])), 100.0);
      const double phase = std::sin(double(x[size_t(f * ld + bins + b)]));
      EXPECT_NEAR(re[size_t(f * bins + b)], mag * std::cos(phase), 1e-4 * (1 + mag));
      EXPECT_NEAR(im[size_t(f * bins + b)], mag * std::sin(phase), 1e-4 * (1 + mag));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, DataOps, ::testing::Values(1, 2));

}  // namespace
}  // namespace cosy
