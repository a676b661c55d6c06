#include "kernels/cpu_backend.h"

#include <cpuid.h>
#include <immintrin.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/sync_points.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/data_ops.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/stft.h"

namespace cosy::cpu {

namespace {

class CpuEvent final : public Event {
 public:
  void synchronize() override { report_sync(std::chrono::steady_clock::now()); }
  bool query() override { return true; }
};

class CpuStream final : public Stream {
 public:
  void record(Event& /*event*/) override {}  // work already ran when it was queued
  void wait(Event& /*event*/) override {}
  void synchronize() override { report_sync(std::chrono::steady_clock::now()); }
};

class CpuGraph final : public Graph {
 public:
  explicit CpuGraph(std::function<void(Stream&)> record) : record_(std::move(record)) {}
  void launch(Stream& stream) override { record_(stream); }

 private:
  std::function<void(Stream&)> record_;
};

class CpuPrimitives final : public Primitives {
 public:
  explicit CpuPrimitives(ThreadPool& pool) : pool_(pool) {}

  void linear(Stream&, std::span<const Segment> segs, const LinearArgs& a) override {
    const PackedWeight& w = as_packed(a.weight);
    std::vector<GemmProblem> problems;
    problems.reserve(segs.size());
    for (const Segment& s : segs) {
      if (s.t_in == 0) continue;
      const int64_t ldx = s.ld_x > 0 ? s.ld_x : w.in_features();
      problems.push_back(
          {{s.x, ldx, 1, 0, w.in_features()}, s.t_in, s.y, s.ld_y > 0 ? s.ld_y : w.out_features()});
    }
    gemm(pool_, problems, w, {a.bias, a.accumulate});
  }
  void conv1d(Stream&, std::span<const Segment> segs, const Conv1dArgs& a) override {
    cpu::conv1d(pool_, segs, a);
  }
  void conv_transpose1d(Stream&, std::span<const Segment> segs,
                        const ConvTranspose1dArgs& a) override {
    cpu::conv_transpose1d(pool_, segs, a);
  }
  void activation(Stream&, float* x, int64_t rows, int64_t channels,
                  const Activation& act) override {
    pool_.parallel_range(rows, 16, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        activate_row(act, x + r * channels, x + r * channels, channels);
    });
  }
  void gated_activation(Stream&, const float* x, float* y, int64_t rows, int64_t channels,
                        const Activation& act) override {
    pool_.parallel_range(rows, 4, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* row = x + r * 2 * channels;
        gated_row(act, row, row + channels, y + r * channels, channels);
      }
    });
  }
  void rms_norm(Stream&, const float* x, float* y, int64_t rows, int64_t dim, const float* w,
                float eps) override {
    cpu::rms_norm(pool_, x, y, rows, dim, w, eps);
  }
  void layer_norm(Stream&, const float* x, float* y, int64_t rows, int64_t dim, const float* w,
                  const float* b, float eps) override {
    cpu::layer_norm(pool_, x, y, rows, dim, w, b, eps);
  }
  void softmax(Stream&, float* x, int64_t rows, int64_t n, bool log) override {
    cpu::softmax(pool_, x, rows, n, log);
  }
  void rope(Stream&, float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
            const int32_t* positions, float theta, RopePairs pairs) override {
    cpu::rope(pool_, x, rows, heads, head_dim, ld, positions, theta, pairs);
  }
  void attention(Stream&, std::span<const AttentionSeq> seqs, const AttentionArgs& a) override {
    cpu::attention(pool_, seqs, a);
  }
  void stft(Stream&, const float* x, int64_t n, int64_t n_fft, int64_t hop, float* re,
            float* im) override {
    cpu::stft(pool_, x, n, n_fft, hop, re, im);
  }
  void istft(Stream&, const float* re, const float* im, int64_t frames, int64_t n_fft, int64_t hop,
             float* out) override {
    cpu::istft(pool_, re, im, frames, n_fft, hop, out);
  }
  void axpby(Stream&, const float* x, float* y, int64_t n, float alpha, float beta) override {
    cpu::axpby(pool_, x, y, n, alpha, beta);
  }
  void add_row(Stream&, const float* x, const float* row, float* y, int64_t rows,
               int64_t cols) override {
    cpu::add_row(pool_, x, row, y, rows, cols);
  }
  void gated_add(Stream&, const float* x, const float* gate, float* y, int64_t rows,
                 int64_t cols) override {
    cpu::gated_add(pool_, x, gate, y, rows, cols);
  }
  void copy_2d(Stream&, const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t rows,
               int64_t cols) override {
    cpu::copy_2d(pool_, src, ld_src, dst, ld_dst, rows, cols);
  }
  void fill_2d(Stream&, float* dst, int64_t ld_dst, int64_t rows, int64_t cols,
               float value) override {
    cpu::fill_2d(pool_, dst, ld_dst, rows, cols, value);
  }
  void pad_rows(Stream&, const float* x, int64_t rows, int64_t cols, float* y, int64_t left,
                int64_t right, PadMode mode) override {
    cpu::pad_rows(pool_, x, rows, cols, y, left, right, mode);
  }
  void gather_rows(Stream&, const float* table, int64_t cols, const int32_t* ids, int64_t n,
                   float* dst) override {
    cpu::gather_rows(pool_, table, cols, ids, n, dst);
  }
  void to_half(Stream&, const float* x, uint16_t* y, int64_t n) override {
    floats_to_halves(x, y, static_cast<size_t>(n));
  }
  void polar_spectrum(Stream&, const float* x, int64_t ld_x, int64_t frames, int64_t bins,
                      float max_magnitude, float* real, float* imag) override {
    cpu::polar_spectrum(pool_, x, ld_x, frames, bins, max_magnitude, real, imag);
  }

 private:
  ThreadPool& pool_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, BlockCache::Options cache)
      : owned_pool_(threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr),
        pool_(owned_pool_ ? *owned_pool_ : ThreadPool::global()),
        primitives_(pool_),
        cache_(cache) {}

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "cpu";
    i.kind = DeviceKind::Cpu;
    i.num_threads = pool_.num_threads();
    i.detail = cat("AVX2+FMA+F16C", bf16_uses_amx() ? ", bf16 on AMX tiles" : "", ", ",
                   pool_.num_threads(), " threads");
    return i;
  }
  bool supports(Op /*op*/, DType dtype) const override { return dtype == DType::F32; }
  bool supports_weight_format(WeightFormat f) const override {
    if (f == WeightFormat::BF16) return cpu_has_bf16();
    if (f == WeightFormat::W8A8) return cpu_has_vnni();
    return true;
  }

  void* allocate(size_t bytes, MemoryKind /*kind*/) override { return cache_.allocate(bytes); }
  void deallocate(void* p, MemoryKind /*kind*/) override { cache_.deallocate(p); }
  void copy(Stream&, void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  std::shared_ptr<const void> upload_constant(const void* host, size_t /*bytes*/,
                                              std::shared_ptr<const void> owner) override {
    return {std::move(owner), host};  // the kernels read host memory: a view, no copy
  }
  std::unique_ptr<Stream> create_stream() override { return std::make_unique<CpuStream>(); }
  std::unique_ptr<Event> create_event() override { return std::make_unique<CpuEvent>(); }
  std::unique_ptr<Graph> capture(Stream& /*stream*/,
                                 const std::function<void(Stream&)>& record) override {
    return std::make_unique<CpuGraph>(record);
  }

  std::shared_ptr<const PreparedWeight> prepare_linear(const float* w, int64_t n, int64_t k,
                                                       WeightFormat f) override {
    return std::make_shared<PackedWeight>(n, k, f,
                                          [&](int64_t r, int64_t c) { return w[r * k + c]; });
  }
  std::shared_ptr<const PreparedWeight> prepare_conv1d(const float* w, int64_t out_channels,
                                                       int64_t in_per_group, int64_t kernel,
                                                       int64_t groups, WeightFormat f) override {
    return pack_conv1d(w, out_channels, in_per_group, kernel, groups, f);
  }
  std::shared_ptr<const PreparedWeight> prepare_conv_transpose1d(const float* w,
                                                                 int64_t in_channels,
                                                                 int64_t out_channels,
                                                                 int64_t kernel,
                                                                 WeightFormat f) override {
    return pack_conv_transpose1d(w, in_channels, out_channels, kernel, f);
  }
  Primitives& primitives() override { return primitives_; }

 private:
  std::unique_ptr<ThreadPool> owned_pool_;
  ThreadPool& pool_;
  CpuPrimitives primitives_;
  BlockCache cache_;  // last member: destroyed first, while nothing is live
};

}  // namespace

bool cpu_supported() {
  // cpuid directly: clang 14's __builtin_cpu_supports does not know "f16c".
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  const bool fma = (c & bit_FMA) != 0, f16c = (c & bit_F16C) != 0;
  const bool os_avx = (c & bit_OSXSAVE) != 0 && (c & bit_AVX) != 0 && (_xgetbv(0) & 0x6) == 0x6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  const bool avx2 = (b & bit_AVX2) != 0;
  return fma && f16c && os_avx && avx2;
}

std::unique_ptr<Backend> create_cpu_backend(int threads, BlockCache::Options cache) {
  if (!cpu_supported()) fail("cpu backend: this CPU lacks AVX2/FMA/F16C, which the kernels need");
  return std::make_unique<CpuBackend>(threads, cache);
}

}  // namespace cosy::cpu
