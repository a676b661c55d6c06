// bench-kernels: the CPU kernels at the real CosyVoice2 shapes, as fractions of this
// machine's peak FMA and DRAM read bandwidth (measured first, in the same run), with the
// sgemm of Debian's three CPU libraries on the same shapes as baselines: OpenBLAS, BLIS
// and oneDNN (docs/performance.md has the comparison that chose our own kernels).
//   build/bench/kernel_bench [--json FILE] [--quick] [--m 1,4,...]
//                            [--only linear|conv|attention]
// --m picks the row counts of the linear shapes (default 1,4,16,64,256); --only runs one
// group of shapes.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/cpu_identity.h"
#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/machine_limits.h"
#include "library_conv.h"
#include "library_gemm.h"

using namespace cosy;

namespace {

std::vector<float> rnd(size_t n, float scale = 0.05f) {
  std::vector<float> v(n);
  uint32_t s = 12345;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 16777216.0f - 0.5f);
  }
  return v;
}

// Waits for the idle threads of the library measured last to stop spinning (OpenBLAS's and
// libgomp's workers busy-wait for a while after a call), so they do not take cores from
// the next measurement: without it BLIS, measured right after OpenBLAS, ran at a tenth of
// its speed on some shapes.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

// Runs a library's version of one of our kernels into `out` and fails unless it matches
// `ours` (float32 sums in another order: within 1e-4 of the output's scale).
void check_library(const char* what, std::vector<float>& out, const std::function<void()>& run,
                   const std::vector<float>& ours) {
  run();
  if (out.size() != ours.size()) fail(what, ": ", out.size(), " outputs, ours ", ours.size());
  float worst = 0, scale = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    worst = std::max(worst, std::abs(out[i] - ours[i]));
    scale = std::max(scale, std::abs(ours[i]));
  }
  if (!(worst <= 1e-4f * std::max(1.0f, scale))) fail(what, " differs from ours by ", worst);
}

struct Row {
  std::string name, dtype, shape;
  int64_t m = 0, k = 0, n = 0;
  double gflops = 0, gbps = 0;
};

}  // namespace

int run(int argc, char** argv) {
  std::string json_path;
  bool quick = false;
  std::string only;
  std::vector<int64_t> ms = {1, 4, 16, 64, 256};
  CLI::App app{
      "kernel_bench: the CPU kernels at the real CosyVoice2 shapes, as fractions of "
      "this machine's peak FMA and DRAM read rate, beside OpenBLAS, BLIS and oneDNN"};
  app.add_option("--json", json_path, "Write the figures as JSON");
  app.add_flag("--quick", quick, "Fewer repetitions per shape");
  app.add_option("--only", only, "Run one group of shapes")
      ->check(CLI::IsMember({"linear", "flow", "conv", "attention"}));
  app.add_option("--m", ms, "Row counts of the linear shapes")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  auto runs = [&](const char* group) { return only.empty() || only == group; };
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  std::printf("cpu: %s\n", cpu::cpu_summary().c_str());
  std::printf(
      "machine: %d threads, peak FMA %.1f GFLOP/s (%d-bit; 256-bit %.1f), DRAM read %.1f GB/s\n",
      pool.num_threads(), lim.peak_gflops, lim.fma_bits, lim.peak_gflops_256, lim.dram_read_gbps);
  std::printf("GEMM kernel: %s\n\n", std::getenv("COSY_GEMM_KERNEL") != nullptr
                                         ? std::getenv("COSY_GEMM_KERNEL")
                                         : "tuned choice or default (avx2)");
  // Every library gets the same number of threads as our pool (BLIS and oneDNN run on
  // OpenMP, OpenBLAS on its own threads).
  const bench::LibraryGemm libraries[] = {bench::openblas_gemm(), bench::blis_gemm(),
                                          bench::onednn_gemm()};
  for (const auto& lib : libraries) lib.set_threads(pool.num_threads());
  const double budget = quick ? 0.05 : 0.3;
  std::vector<Row> rows;
  auto report = [&](Row r) {
    std::printf("%-12s %-5s %-28s %8.1f GFLOP/s (%5.1f%% peak) %7.1f GB/s (%5.1f%% DRAM)\n",
                r.name.c_str(), r.dtype.c_str(), r.shape.c_str(), r.gflops,
                100 * r.gflops / lim.peak_gflops, r.gbps, 100 * r.gbps / lim.dram_read_gbps);
    rows.push_back(std::move(r));
  };
  // Seconds per call of `fn` with each AVX-512 kernel on every shape (installed as the
  // choice for all shapes), then the default choices back.
  auto time_each_kernel = [&](const std::function<void()>& fn, double budget_s) {
    std::vector<std::pair<cpu::GemmKernel, double>> out;
    for (const cpu::GemmKernel kernel :
         cpu::gemm_kernels_for(WeightFormat::F32, cpu::GemmRows::Many)) {
      if (kernel == cpu::GemmKernel::Avx2) continue;
      auto all = std::make_shared<cpu::GemmKernelChoices>();
      all->set_fallback(kernel);
      cpu::install_gemm_kernel_choices(all);
      out.emplace_back(kernel, bench::time_best(fn, budget_s));
    }
    cpu::install_gemm_kernel_choices(nullptr);
    return out;
  };
  auto report_kernels = [&](const Row& base, double base_s,
                            const std::vector<std::pair<cpu::GemmKernel, double>>& timed) {
    for (const auto& [kernel, s] : timed) {
      Row rk = base;
      rk.name = cpu::gemm_kernel_name(kernel);
      rk.gflops = base.gflops * base_s / s;
      rk.gbps = base.gbps * base_s / s;
      report(rk);
    }
  };
  auto report_with_library = [&](const Row& base, double base_s,
                                 const std::vector<std::pair<cpu::GemmKernel, double>>& timed,
                                 bench::OnednnConv1d& lib, const std::vector<float>& x,
                                 const std::vector<float>& y) {
    std::vector<float> y_lib(static_cast<size_t>(lib.out_values()));
    check_library(
        "onednn convolution", y_lib, [&] { lib.run(x.data(), y_lib.data()); }, y);
    const double t_lib = bench::time_best([&] { lib.run(x.data(), y_lib.data()); }, budget);
    settle();  // libgomp's workers spin after the call
    Row rl = base;
    rl.name = "onednn";
    rl.gflops = base.gflops * base_s / t_lib;
    rl.gbps = base.gbps * base_s / t_lib;
    report(base);
    report_kernels(base, base_s, timed);
    report(rl);
  };

  // LLM linears: [N, K] weights, M rows of activations. With --only flow: the flow
  // estimator's linears (q/k/v, out, feed-forward in and out) instead.
  const std::vector<std::pair<int64_t, int64_t>> linears =
      only == "flow" ? std::vector<std::pair<int64_t, int64_t>>{{512, 256},
                                                                {1536, 256},
                                                                {256, 512},
                                                                {1024, 256},
                                                                {256, 1024}}
                     : std::vector<std::pair<int64_t, int64_t>>{
                           {896, 896}, {128, 896}, {4864, 896}, {896, 4864}, {6564, 896}};
  for (const auto& shape : linears) {
    if (!runs("linear") && !runs("flow")) break;
    const int64_t n = shape.first, k = shape.second;  // plain names: lambdas capture them
    const auto w = rnd(static_cast<size_t>(n * k));
    // Enough copies of the weight, in every format, to cycle through 256 MB, so M=1
    // streams the weights from DRAM, not from the caches (plain [N, K] copies for the
    // libraries).
    auto copies_of = [&](int64_t bytes_per_value) {
      return static_cast<int>(std::max<int64_t>(1, (256ll << 20) / (n * k * bytes_per_value)));
    };
    std::vector<std::vector<float>> plain(static_cast<size_t>(copies_of(4)), w);
    // bf16 (where the CPU has AVX512_BF16) multiplies at twice the float32 FMA rate, and
    // w8a8 (AVX512-VNNI) at four times: their "% peak" is of the float32 peak, so up to
    // 200 % and 400 %.
    for (WeightFormat f : {WeightFormat::F32, WeightFormat::F16, WeightFormat::I8,
                           WeightFormat::BF16, WeightFormat::W8A8}) {
      if (f == WeightFormat::BF16 && !cpu::cpu_has_bf16()) continue;
      if (f == WeightFormat::W8A8 && !cpu::cpu_has_vnni()) continue;
      // The flow's weights are fp32, or bf16 by choice.
      if (only == "flow" && f != WeightFormat::F32 && f != WeightFormat::BF16) continue;
      const int64_t value_bytes = f == WeightFormat::F32                             ? 4
                                  : f == WeightFormat::I8 || f == WeightFormat::W8A8 ? 1
                                                                                     : 2;
      const int copies = copies_of(value_bytes);
      std::vector<std::unique_ptr<cpu::PackedWeight>> pw;
      for (int c = 0; c < copies; ++c) {
        pw.push_back(std::make_unique<cpu::PackedWeight>(
            n, k, f, [&](int64_t r, int64_t cc) { return w[static_cast<size_t>(r * k + cc)]; }));
      }
      for (int64_t m : ms) {
        const auto x = rnd(static_cast<size_t>(m * k), 1.0f);
        std::vector<float> y(static_cast<size_t>(m * n));
        int next = 0;
        // The call's best time, cycling through the weight's copies: through gemm(), or
        // through one kernel of the tuner's.
        auto time_gemm = [&](std::optional<cpu::GemmKernel> kernel) {
          return bench::time_best(
              [&] {
                cpu::GemmProblem p{{x.data(), k, 1, 0, k}, m, y.data(), n};
                const cpu::PackedWeight& weight = *pw[static_cast<size_t>(next)];
                if (kernel) {
                  cpu::gemm_with_kernel(pool, {&p, 1}, weight, {}, *kernel);
                } else {
                  cpu::gemm(pool, {&p, 1}, weight, {});
                }
                next = (next + 1) % copies;
              },
              budget);
        };
        settle();
        const double t = time_gemm(std::nullopt);
        Row r{m == 1 ? "gemv" : "gemm",
              weight_format_name(f),
              std::to_string(m) + "x" + std::to_string(k) + " * " + std::to_string(n) + "x" +
                  std::to_string(k) + "^T",
              m,
              k,
              n};
        r.gflops = 2.0 * static_cast<double>(m * n * k) / t / 1e9;
        r.gbps = static_cast<double>(pw[0]->bytes()) / t / 1e9;
        report(r);
        // The same call, another way, named, in `seconds`.
        auto report_beside = [&](std::string name, double seconds) {
          Row other = r;
          other.name = std::move(name);
          other.gflops = r.gflops * t / seconds;
          other.gbps = r.gbps * t / seconds;
          report(other);
        };
        if ((f == WeightFormat::BF16 && cpu::bf16_uses_amx()) ||
            (f == WeightFormat::W8A8 && cpu::w8a8_uses_amx())) {
          // The row above ran on AMX tiles; the AVX512_BF16 or VNNI kernel beside it.
          cpu::set_amx(false);
          const double tv = time_gemm(std::nullopt);
          cpu::set_amx(true);
          report_beside(f == WeightFormat::BF16 ? "avx512-bf16" : "avx512-vnni", tv);
        }
        // The tuner's other candidates on this shape, each named: float32 tiles above the
        // rows the default streams, the fp16/int8 streaming kernel up to them.
        const cpu::GemmRows regime =
            m <= cpu::kGemmStreamRows ? cpu::GemmRows::Few : cpu::GemmRows::Many;
        for (const cpu::GemmKernel kernel : cpu::gemm_kernels_for(f, regime)) {
          if (kernel == cpu::GemmKernel::Avx2) continue;
          report_beside(std::string(cpu::gemm_kernel_name(kernel)), time_gemm(kernel));
        }
        if (f != WeightFormat::F32) continue;
        // The result of copy 0 through our kernel, to check each library computes the same.
        std::vector<float> ours(y.size());
        cpu::GemmProblem p0{{x.data(), k, 1, 0, k}, m, ours.data(), n};
        cpu::gemm(pool, {&p0, 1}, *pw[0], {});
        for (const auto& lib : libraries) {
          lib.sgemm(m, n, k, x.data(), plain[0].data(), y.data());
          float worst = 0;
          for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(y[i] - ours[i]));
          if (worst > 1e-3f) {
            std::fprintf(stderr, "%s sgemm differs from ours by %g at %s\n", lib.name, worst,
                         r.shape.c_str());
            return 1;
          }
          settle();
          const double tb = bench::time_best(
              [&] {
                lib.sgemm(m, n, k, x.data(), plain[static_cast<size_t>(next)].data(), y.data());
                next = (next + 1) % copies;  // f is fp32 here: as many copies as `plain`
              },
              budget);
          Row b{lib.name, "fp32", r.shape, m, k, n};
          b.gflops = 2.0 * static_cast<double>(m * n * k) / tb / 1e9;
          b.gbps = static_cast<double>(n * k * 4) / tb / 1e9;
          report(b);
        }
      }
    }
  }

  if (runs("conv")) {
    // Convolutions at the HiFT (10 s of audio) and flow estimator shapes.
    struct ConvShape {
      const char* where;
      int64_t cin, cout, kernel, dilation, length;
    };
    const ConvShape convs[] = {
        {"hift.rb0", 256, 256, 11, 5, 2000}, {"hift.rb0", 256, 256, 3, 1, 2000},
        {"hift.rb1", 128, 128, 7, 3, 10000}, {"hift.rb2", 64, 64, 11, 1, 30001},
        {"hift.pre", 80, 512, 7, 1, 250},    {"flow.res", 256, 256, 3, 1, 1000},
        {"flow.res", 512, 256, 3, 1, 1000},
    };
    for (const auto& c : convs) {
      const auto w = rnd(static_cast<size_t>(c.cout * c.cin * c.kernel));
      auto pw = cpu::pack_conv1d(w.data(), c.cout, c.cin, c.kernel, 1, WeightFormat::F32);
      const auto x = rnd(static_cast<size_t>(c.length * c.cin), 1.0f);
      std::vector<float> y(static_cast<size_t>(c.length * c.cout));
      Conv1dArgs a;
      a.weight = pw.get();
      a.in_channels = c.cin;
      a.out_channels = c.cout;
      a.kernel = c.kernel;
      a.dilation = c.dilation;
      a.pad_left = a.pad_right = c.dilation * (c.kernel - 1) / 2;
      Segment seg{x.data(), c.length, y.data()};
      const double t = bench::time_best([&] { cpu::conv1d(pool, {&seg, 1}, a); }, budget);
      const auto other_kernels = time_each_kernel([&] { cpu::conv1d(pool, {&seg, 1}, a); }, budget);
      Row r{"conv1d",
            "fp32",
            std::string(c.where) + " " + std::to_string(c.cin) + "->" + std::to_string(c.cout) +
                " k" + std::to_string(c.kernel) + " d" + std::to_string(c.dilation) + " T" +
                std::to_string(c.length),
            c.length,
            c.cin * c.kernel,
            c.cout};
      r.gflops = 2.0 * static_cast<double>(c.length * c.cout * c.cin * c.kernel) / t / 1e9;
      r.gbps = static_cast<double>((c.length * (c.cin + c.cout)) * 4) / t / 1e9;
      // oneDNN's convolution on the same shape and data, its result checked against ours.
      bench::OnednnConv1d lib(false, c.cin, c.cout, c.kernel, 1, c.dilation, a.pad_left, c.length,
                              w.data());
      report_with_library(r, t, other_kernels, lib, x, y);
    }
    {
      const int64_t cin = 512, cout = 256, kernel = 16, stride = 8, t_in = 250;
      const auto w = rnd(static_cast<size_t>(cin * cout * kernel));
      auto pw = cpu::pack_conv_transpose1d(w.data(), cin, cout, kernel, WeightFormat::F32);
      const auto x = rnd(static_cast<size_t>(t_in * cin), 1.0f);
      ConvTranspose1dArgs a;
      a.weight = pw.get();
      a.in_channels = cin;
      a.out_channels = cout;
      a.kernel = kernel;
      a.stride = stride;
      a.padding = (kernel - stride) / 2;
      std::vector<float> y(static_cast<size_t>(a.out_length(t_in) * cout));
      Segment seg{x.data(), t_in, y.data()};
      const double t = bench::time_best([&] { cpu::conv_transpose1d(pool, {&seg, 1}, a); }, budget);
      const auto other_kernels = time_each_kernel(
          [&] {
            cpu::conv_transpose1d(pool, {&seg, 1}, a);
          },
          budget);
      Row r{"convT1d", "fp32", "hift.ups0 512->256 k16 s8 T250", t_in, cin, cout * kernel};
      r.gflops = 2.0 * static_cast<double>(t_in * cin * cout * kernel) / t / 1e9;
      r.gbps = static_cast<double>(w.size() * 4) / t / 1e9;
      bench::OnednnConv1d lib(true, cin, cout, kernel, stride, 1, a.padding, t_in, w.data());
      report_with_library(r, t, other_kernels, lib, x, y);
    }
  }
  if (runs("attention")) {
    // Flow estimator self-attention, 8 heads x 64 over dense keys as the flow keeps them
    // per stream: 500 frames (10 s) under the streaming chunk mask of 50, and 650 frames
    // (a 3 s prompt and 10 s) with the full attention of an offline call.
    struct AttentionShape {
      const char* name;
      int64_t len;
      MaskKind mask;
    };
    for (const AttentionShape& sh :
         {AttentionShape{"flow 8x64 T500 chunk50", 500, MaskKind::ChunkCausal},
          AttentionShape{"flow 8x64 T650 full", 650, MaskKind::None}}) {
      for (const bool bf16 : {false, true}) {
        if (bf16 && !cpu::cpu_has_bf16()) continue;
        const int64_t heads = 8, hd = 64, len = sh.len, chunk = 50;
        const auto kv = rnd(static_cast<size_t>(len * heads * hd), 1.0f);
        const auto q = rnd(static_cast<size_t>(len * heads * hd), 1.0f);
        std::vector<float> out(q.size());
        AttentionArgs a;
        a.num_heads = a.num_kv_heads = heads;
        a.head_dim = hd;
        a.mask = sh.mask;
        a.chunk = chunk;
        a.bf16 = bf16;
        AttentionSeq s{q.data(), len, 0, nullptr, len, nullptr, out.data(), kv.data(), kv.data()};
        const double t = bench::time_best([&] { cpu::attention(pool, {&s, 1}, a); }, budget);
        // Visible pairs under the mask, 4 flops per pair and dimension (QK and PV).
        double pairs = 0;
        for (int64_t i = 0; i < len; ++i) {
          const cpu::KeyRange kr = cpu::visible_keys(a, i, len);
          pairs += static_cast<double>(kr.end - kr.begin);
        }
        Row r{"attention", bf16 ? "bf16" : "fp32", sh.name, len, hd, heads};
        r.gflops = 4.0 * pairs * static_cast<double>(hd * heads) / t / 1e9;
        r.gbps = static_cast<double>(3 * len * heads * hd * 4) / t / 1e9;
        report(r);
      }
    }
    {
      // A voice's first streaming flow chunk: the CFG pair (2 sequences), 80 queries from
      // frame 100 (the prompt's last chunk and 30 new frames) over 180 keys, the first 100
      // the voice's shared prompt rows; chunk mask of 50.
      const int64_t seqs_n = 2, heads = 8, hd = 64, q_len = 80, pos0 = 100, kv_len = 180;
      const auto shared = rnd(static_cast<size_t>(pos0 * heads * hd), 1.0f);
      const auto own = rnd(static_cast<size_t>(seqs_n * q_len * heads * hd), 1.0f);
      const auto q = rnd(own.size(), 1.0f);
      std::vector<float> out(q.size());
      AttentionArgs a;
      a.num_heads = a.num_kv_heads = heads;
      a.head_dim = hd;
      a.mask = MaskKind::ChunkCausal;
      a.chunk = 50;
      std::vector<AttentionSeq> seqs(static_cast<size_t>(seqs_n));
      for (int64_t i = 0; i < seqs_n; ++i) {
        AttentionSeq& s = seqs[static_cast<size_t>(i)];
        const int64_t at = i * q_len * heads * hd;
        s.q = q.data() + at;
        s.q_len = q_len;
        s.q_pos0 = pos0;
        s.kv_len = kv_len;
        s.out = out.data() + at;
        s.k = s.v = own.data() + at;
        s.k_shared = s.v_shared = shared.data();
        s.shared_len = pos0;
      }
      const double t = bench::time_best([&] { cpu::attention(pool, seqs, a); }, budget);
      double pairs = 0;
      for (int64_t i = pos0; i < kv_len; ++i) {
        const cpu::KeyRange kr = cpu::visible_keys(a, i, kv_len);
        pairs += static_cast<double>(kr.end - kr.begin);
      }
      Row r{"attention", "fp32", "flow first chunk 2x80 q over 180 keys (100 shared)",
            q_len,       hd,     heads};
      r.gflops = 4.0 * seqs_n * pairs * static_cast<double>(hd * heads) / t / 1e9;
      r.gbps = static_cast<double>(3 * seqs_n * q_len * heads * hd * 4) / t / 1e9;
      report(r);
    }
    {
      // LM decode: one new row per stream for 16 streams with 150 cached positions each,
      // Qwen2's 14 query heads over 2 kv heads of 64, keys in a paged pool of 16-row blocks.
      const int64_t streams = 16, len = 150, heads = 14, kv_heads = 2, hd = 64, block = 16;
      const int64_t blocks_per = (len + block - 1) / block;
      const auto k_pool =
          rnd(static_cast<size_t>(streams * blocks_per * block * kv_heads * hd), 1.0f);
      const auto v_pool = rnd(k_pool.size(), 1.0f);
      const auto q = rnd(static_cast<size_t>(streams * heads * hd), 1.0f);
      std::vector<float> out(q.size());
      std::vector<int32_t> tables(static_cast<size_t>(streams * blocks_per));
      for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);
      std::vector<AttentionSeq> seqs(static_cast<size_t>(streams));
      for (int64_t i = 0; i < streams; ++i) {
        AttentionSeq& s = seqs[static_cast<size_t>(i)];
        s.q = q.data() + i * heads * hd;
        s.q_len = 1;
        s.q_pos0 = len - 1;
        s.block_table = tables.data() + i * blocks_per;
        s.kv_len = len;
        s.out = out.data() + i * heads * hd;
      }
      AttentionArgs a;
      a.num_heads = heads;
      a.num_kv_heads = kv_heads;
      a.head_dim = hd;
      a.mask = MaskKind::Causal;
      a.k_pool = k_pool.data();
      a.v_pool = v_pool.data();
      a.block_size = block;
      const double t = bench::time_best([&] { cpu::attention(pool, seqs, a); }, budget);
      Row r{"attention", "fp32", "llm decode 16 streams x 150 paged, 14/2 heads x 64",
            streams,     hd,     heads};
      r.gflops = 4.0 * static_cast<double>(streams * len * heads * hd) / t / 1e9;
      r.gbps = static_cast<double>(2 * streams * len * kv_heads * hd * 4) / t / 1e9;
      report(r);
    }
  }

  if (!json_path.empty()) {
    nlohmann::json j;
    j["peak_gflops"] = lim.peak_gflops;
    j["peak_gflops_256"] = lim.peak_gflops_256;
    j["fma_bits"] = lim.fma_bits;
    j["cpu"] = cpu::cpu_model_name();
    j["isa"] = cpu::cpu_isa_flags();
    j["dram_read_gbps"] = lim.dram_read_gbps;
    j["threads"] = pool.num_threads();
    j["kernels"] = nlohmann::json::array();
    for (const Row& r : rows) {
      j["kernels"].push_back({{"name", r.name},
                              {"dtype", r.dtype},
                              {"shape", r.shape},
                              {"m", r.m},
                              {"k", r.k},
                              {"n", r.n},
                              {"gflops", r.gflops},
                              {"gbps", r.gbps},
                              {"peak_frac", r.gflops / lim.peak_gflops},
                              {"bw_frac", r.gbps / lim.dram_read_gbps}});
    }
    std::ofstream(json_path) << j.dump(2) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_bench: %s\n", e.what());
    return 1;
  }
}
