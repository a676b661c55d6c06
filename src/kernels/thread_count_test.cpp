// Every pooled kernel gives bit-identical results on 1, 2 and 3 threads: a task split
// never changes an output's summation order, so a stream's audio does not depend on the
// machine's core count or on what else shares the pool.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/norm.h"
#include "kernels/stft.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::dense_seq;
using testing::random_vector;

// Runs `kernel` into a fresh copy of `init` on pools of 1, 2 and 3 threads; expects the
// three outputs equal, and different from `init` (the kernel really wrote them).
void expect_same_on_every_thread_count(const std::vector<float>& init,
                                       const std::function<void(ThreadPool&, float*)>& kernel) {
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> out = init;
    kernel(pool, out.data());
    outs.push_back(std::move(out));
  }
  EXPECT_NE(outs[0], init);
  EXPECT_EQ(outs[0], outs[1]) << "1 and 2 threads differ";
  EXPECT_EQ(outs[0], outs[2]) << "1 and 3 threads differ";
}

TEST(ThreadCount, ConvTranspose1d) {
  const int64_t cin = 48, cout = 24, kernel = 16, stride = 8, t_in = 37;
  const auto x = random_vector(size_t(t_in * cin), 1);
  const auto w = random_vector(size_t(cin * cout * kernel), 2, 0.3f);
  auto pw = cpu::pack_conv_transpose1d(w.data(), cin, cout, kernel, WeightFormat::F32);
  ConvTranspose1dArgs a;
  a.weight = pw.get();
  a.in_channels = cin;
  a.out_channels = cout;
  a.kernel = kernel;
  a.stride = stride;
  a.padding = (kernel - stride) / 2;
  a.pre = {ActivationKind::LeakyRelu, 0.1f, nullptr};
  expect_same_on_every_thread_count(std::vector<float>(size_t(a.out_length(t_in) * cout)),
                                    [&](ThreadPool& pool, float* y) {
                                      Segment seg{x.data(), t_in, y};
                                      cpu::conv_transpose1d(pool, {&seg, 1}, a);
                                    });
}

TEST(ThreadCount, AttentionDenseTiledAndRelative) {
  const int64_t heads = 4, hd = 32, kv_len = 150, q_len = 100, pos0 = 50;
  const auto q = random_vector(size_t(q_len * heads * hd), 3);
  const auto q_rel = random_vector(size_t(q_len * heads * hd), 4);
  const auto k = random_vector(size_t(kv_len * heads * hd), 5);
  const auto v = random_vector(size_t(kv_len * heads * hd), 6);
  const auto rel = random_vector(size_t((2 * kv_len - 1) * heads * hd), 7);
  for (bool relative : {false, true}) {
    AttentionArgs a;
    a.num_heads = a.num_kv_heads = heads;
    a.head_dim = hd;
    a.mask = MaskKind::ChunkCausal;
    a.chunk = 50;
    if (relative) {
      a.rel_table = rel.data();
      a.rel_zero = kv_len - 1;
    }
    expect_same_on_every_thread_count(
        std::vector<float>(q.size()), [&](ThreadPool& pool, float* out) {
          AttentionSeq s = dense_seq(q, q_len, pos0, kv_len, k, v, out);
          if (relative) s.q_rel = q_rel.data();
          cpu::attention(pool, {&s, 1}, a);
        });
  }
}

TEST(ThreadCount, NormsSoftmaxAndRope) {
  const int64_t rows = 301, dim = 96;
  const auto x = random_vector(size_t(rows * dim), 8);
  const auto w = random_vector(size_t(dim), 9);
  const auto b = random_vector(size_t(dim), 10);
  const std::vector<float> zeros(x.size());
  expect_same_on_every_thread_count(zeros, [&](ThreadPool& pool, float* y) {
    cpu::rms_norm(pool, x.data(), y, rows, dim, w.data(), 1e-6f);
  });
  expect_same_on_every_thread_count(zeros, [&](ThreadPool& pool, float* y) {
    cpu::layer_norm(pool, x.data(), y, rows, dim, w.data(), b.data(), 1e-5f);
  });
  expect_same_on_every_thread_count(
      x, [&](ThreadPool& pool, float* y) { cpu::softmax(pool, y, rows, dim, true); });
  std::vector<int32_t> positions(static_cast<size_t>(rows));
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(7 * i + 3);
  expect_same_on_every_thread_count(x, [&](ThreadPool& pool, float* y) {
    cpu::rope(pool, y, rows, 3, 32, dim, positions.data(), 1e6f);
  });
}

TEST(ThreadCount, StftAndIstft) {
  const int64_t n = 4000, n_fft = 16, hop = 4, bins = n_fft / 2 + 1;
  const int64_t frames = cpu::stft_frames(n, hop);
  const auto x = random_vector(size_t(n), 11);
  // Real and imaginary parts side by side in one output.
  expect_same_on_every_thread_count(
      std::vector<float>(size_t(2 * frames * bins)), [&](ThreadPool& pool, float* out) {
        cpu::stft(pool, x.data(), n, n_fft, hop, out, out + frames * bins);
      });
  const auto re = random_vector(size_t(frames * bins), 12);
  const auto im = random_vector(size_t(frames * bins), 13);
  expect_same_on_every_thread_count(
      std::vector<float>(size_t(hop * (frames - 1))), [&](ThreadPool& pool, float* out) {
        cpu::istft(pool, re.data(), im.data(), frames, n_fft, hop, out);
      });
}

}  // namespace
}  // namespace cosy
