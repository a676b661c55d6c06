#include "kernels/conv.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/thread_pool.h"
#include "kernels/packed_weight.h"
#include "kernels/reference.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::max_abs_diff;
using testing::random_vector;
using testing::rounded_to_bf16;

struct ConvCase {
  int64_t cin, cout, kernel, stride, dilation, pad_l, pad_r, groups, t_in;
  ActivationKind pre;
};

// The case's shape as conv arguments (no weight, bias or pre-activation yet).
Conv1dArgs args_of(const ConvCase& c) {
  Conv1dArgs a;
  a.in_channels = c.cin;
  a.out_channels = c.cout;
  a.kernel = c.kernel;
  a.stride = c.stride;
  a.dilation = c.dilation;
  a.pad_left = c.pad_l;
  a.pad_right = c.pad_r;
  a.groups = c.groups;
  return a;
}

TEST(Conv1d, MatchesReference) {
  ThreadPool pool(2);
  const ConvCase cases[] = {
      {80, 64, 7, 1, 1, 3, 3, 1, 25, ActivationKind::None},      // conv_pre
      {64, 64, 11, 1, 5, 25, 25, 1, 40, ActivationKind::Snake},  // resblock, dilation 5
      {18, 32, 30, 15, 1, 7, 7, 1, 301, ActivationKind::None},   // source_downs, stride 15
      {18, 16, 6, 3, 1, 1, 1, 1, 61, ActivationKind::None},
      {32, 32, 3, 1, 1, 2, 0, 1, 17, ActivationKind::Elu},        // causal
      {24, 12, 3, 1, 2, 2, 2, 4, 19, ActivationKind::LeakyRelu},  // grouped
      {8, 8, 5, 1, 1, 2, 2, 8, 10, ActivationKind::GeluErf},      // depthwise
      {5, 3, 1, 1, 1, 0, 0, 1, 1, ActivationKind::Silu},
  };
  uint32_t seed = 100;
  for (const auto& c : cases) {
    Conv1dArgs a = args_of(c);
    const auto alpha = random_vector(size_t(c.cin), seed++, 1.0f);
    std::vector<float> alpha_pos(alpha.size());
    for (size_t i = 0; i < alpha.size(); ++i) alpha_pos[i] = 0.2f + std::abs(alpha[i]);
    a.pre = {c.pre, 0.1f, alpha_pos.data()};
    const auto x = random_vector(size_t(c.t_in * c.cin), seed++);
    const auto w = random_vector(size_t(c.cout * (c.cin / c.groups) * c.kernel), seed++, 0.3f);
    const auto b = random_vector(size_t(c.cout), seed++);
    auto pw =
        cpu::pack_conv1d(w.data(), c.cout, c.cin / c.groups, c.kernel, c.groups, WeightFormat::F32);
    a.weight = pw.get();
    a.bias = b.data();
    const int64_t t_out = a.out_length(c.t_in);
    std::vector<float> y(static_cast<size_t>(t_out * c.cout));
    Segment seg{x.data(), c.t_in, y.data()};
    cpu::conv1d(pool, {&seg, 1}, a);
    const auto expect = ref::conv1d(x, c.t_in, w, b.data(), a);
    EXPECT_LT(max_abs_diff(y.data(), expect.data(), y.size()), 1e-4)
        << c.cin << "->" << c.cout << " k" << c.kernel << " s" << c.stride << " d" << c.dilation
        << " g" << c.groups;
  }
}

// bf16 weights through the conv's implicit im2col (taps, dilation, padding, groups): the
// same as float32 arithmetic on the bf16-rounded input and weights.
TEST(Conv1d, Bf16EqualsFloatArithmeticOnRoundedOperands) {
  if (!cpu::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  ThreadPool pool(2);
  const ConvCase cases[] = {{64, 48, 3, 1, 2, 4, 0, 1, 37, ActivationKind::None},
                            {24, 12, 5, 2, 1, 2, 2, 2, 41, ActivationKind::None}};
  uint32_t seed = 500;
  for (const auto& c : cases) {
    Conv1dArgs a = args_of(c);
    const auto x = random_vector(size_t(c.t_in * c.cin), seed++);
    const auto w = random_vector(size_t(c.cout * (c.cin / c.groups) * c.kernel), seed++, 0.3f);
    const auto b = random_vector(size_t(c.cout), seed++);
    auto pw = cpu::pack_conv1d(w.data(), c.cout, c.cin / c.groups, c.kernel, c.groups,
                               WeightFormat::BF16);
    a.weight = pw.get();
    a.bias = b.data();
    std::vector<float> y(static_cast<size_t>(a.out_length(c.t_in) * c.cout));
    Segment seg{x.data(), c.t_in, y.data()};
    cpu::conv1d(pool, {&seg, 1}, a);
    const auto expect = ref::conv1d(rounded_to_bf16(x), c.t_in, rounded_to_bf16(w), b.data(), a);
    EXPECT_LT(max_abs_diff(y.data(), expect.data(), y.size()), 1e-4)
        << c.cin << "->" << c.cout << " k" << c.kernel << " g" << c.groups;
    const auto exact = ref::conv1d(x, c.t_in, w, b.data(), a);
    EXPECT_GT(max_abs_diff(y.data(), exact.data(), y.size()), 1e-4) << "no bf16 rounding seen";
  }
}

TEST(Conv1d, BatchedSegmentsOfDifferentLengthsAndStridedViews) {
  ThreadPool one(1), two(2);
  const int64_t cin = 16, cout = 24, kernel = 7;
  Conv1dArgs a;
  a.in_channels = cin;
  a.out_channels = cout;
  a.kernel = kernel;
  a.dilation = 3;
  a.pad_left = a.pad_right = 9;
  a.accumulate = true;
  const auto w = random_vector(size_t(cout * cin * kernel), 1, 0.3f);
  auto pw = cpu::pack_conv1d(w.data(), cout, cin, kernel, 1, WeightFormat::F32);
  a.weight = pw.get();
  const int64_t lens[] = {5, 130, 1, 47};
  const int64_t ld_x = cin + 3;  // a view into a wider buffer
  std::vector<std::vector<float>> xs, ys, ys1, base;
  std::vector<Segment> segs, segs1;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(random_vector(size_t(lens[i] * ld_x), 10 + uint32_t(i)));
    base.push_back(random_vector(size_t(lens[i] * cout), 20 + uint32_t(i)));
    ys.push_back(base.back());
    ys1.push_back(base.back());
  }
  for (int i = 0; i < 4; ++i) {
    segs.push_back({xs[size_t(i)].data(), lens[i], ys[size_t(i)].data(), ld_x, 0});
    segs1.push_back({xs[size_t(i)].data(), lens[i], ys1[size_t(i)].data(), ld_x, 0});
  }
  cpu::conv1d(two, segs, a);
  cpu::conv1d(one, segs1, a);
  for (int i = 0; i < 4; ++i) {
    std::vector<float> dense(static_cast<size_t>(lens[i] * cin));
    for (int64_t t = 0; t < lens[i]; ++t)
      for (int64_t c = 0; c < cin; ++c)
        dense[size_t(t * cin + c)] = xs[size_t(i)][size_t(t * ld_x + c)];
    auto expect = ref::conv1d(dense, lens[i], w, nullptr, a);
    for (size_t j = 0; j < expect.size(); ++j) expect[j] += base[size_t(i)][j];
    EXPECT_LT(max_abs_diff(ys[size_t(i)].data(), expect.data(), expect.size()), 1e-4)
        << "segment " << i;
    EXPECT_EQ(ys[size_t(i)], ys1[size_t(i)]) << "1 and 2 threads differ";
  }
}

TEST(Conv1d, RejectsArgumentsThatDoNotMatchTheWeight) {
  ThreadPool pool(1);
  const auto w = random_vector(8 * 4 * 3, 1);
  auto pw = cpu::pack_conv1d(w.data(), 8, 4, 3, 1, WeightFormat::F32);
  Conv1dArgs a;
  a.in_channels = 5;
  a.out_channels = 8;
  a.kernel = 3;
  a.weight = pw.get();
  std::vector<float> x(50), y(80);
  Segment seg{x.data(), 10, y.data()};
  EXPECT_THROW(cpu::conv1d(pool, {&seg, 1}, a), std::exception);
}

TEST(ConvTranspose1d, MatchesReference) {
  ThreadPool pool(2);
  struct Case {
    int64_t cin, cout, kernel, stride, t_in;
  } cases[] = {
      {64, 32, 16, 8, 25}, {32, 16, 11, 5, 9}, {16, 8, 7, 3, 13}, {3, 5, 4, 4, 1}, {7, 9, 3, 1, 6}};
  uint32_t seed = 7;
  for (const auto& c : cases) {
    ConvTranspose1dArgs a;
    a.in_channels = c.cin;
    a.out_channels = c.cout;
    a.kernel = c.kernel;
    a.stride = c.stride;
    a.padding = (c.kernel - c.stride) / 2;
    a.pre = {ActivationKind::LeakyRelu, 0.1f, nullptr};
    const auto x = random_vector(size_t(c.t_in * c.cin), seed++);
    const auto w = random_vector(size_t(c.cin * c.cout * c.kernel), seed++, 0.3f);
    const auto b = random_vector(size_t(c.cout), seed++);
    auto pw = cpu::pack_conv_transpose1d(w.data(), c.cin, c.cout, c.kernel, WeightFormat::F32);
    a.weight = pw.get();
    a.bias = b.data();
    std::vector<float> y(static_cast<size_t>(a.out_length(c.t_in) * c.cout));
    Segment seg{x.data(), c.t_in, y.data()};
    cpu::conv_transpose1d(pool, {&seg, 1}, a);
    const auto expect = ref::conv_transpose1d(x, c.t_in, w, b.data(), a);
    EXPECT_LT(max_abs_diff(y.data(), expect.data(), y.size()), 1e-4)
        << c.cin << "->" << c.cout << " k" << c.kernel;
  }
}

}  // namespace
}  // namespace cosy
