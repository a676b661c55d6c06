// HiFT at full CosyVoice2 size (base_channels 512, upsample [8,5,3], 8 harmonics) with
// random weights: RTF and achieved GFLOP/s for 10 s of audio, as a fraction of this
// machine's peak measured in the same run; then a batch of 8 streams vs 8 single calls.
//   build/bench/hift_bench [--seconds S] [--weights fp32|fp16|int8]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/machine_limits.h"
#include "model/hift/hift.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "random_weights.h"

using namespace cosy;

int main(int argc, char** argv) {
  double seconds = 10;
  std::string weights = "fp32";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0)
      seconds = std::stod(argv[++i]);
    else if (std::strcmp(argv[i], "--weights") == 0)
      weights = argv[++i];
  }
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  const HiftConfig cfg = preset_config("cosyvoice2-0.5b").hift;
  const StateDict sd = bench::random_weights(
      hift_param_specs(cfg), "random hift",
      [](const ParamSpec& s) { return s.name.find("alpha") != std::string::npos; });
  auto backend = cpu::create_cpu_backend();
  const HiftVocoder hift(*backend, cfg, sd, parse_weight_format(weights));
  const auto frames = static_cast<int64_t>(seconds * 50);
  std::vector<float> mel(static_cast<size_t>(frames * cfg.in_channels));
  std::mt19937 rng(1);
  std::normal_distribution<float> d(-5.0f, 2.0f);
  for (auto& v : mel) v = d(rng);
  TorchGenerator gen(0);
  const double t = bench::time_best([&] { hift.vocode(mel, frames, gen); }, 1.0);
  const double flops = hift.flops(frames);
  std::printf("machine: %d threads, peak FMA %.1f GFLOP/s, DRAM read %.1f GB/s\n",
              pool.num_threads(), lim.peak_gflops, lim.dram_read_gbps);
  std::printf(
      "hift %s, %.1f s of audio: %.3f s, RTF %.3f, %.1f GFLOP -> %.1f GFLOP/s (%.1f%% of peak)\n",
      weights.c_str(), seconds, t, t / seconds, flops / 1e9, flops / t / 1e9,
      100 * flops / t / 1e9 / lim.peak_gflops);

  // 8 streams, one 1 s chunk (50 frames) each: one batched call vs 8 single calls.
  const int64_t chunk = 50;
  std::vector<std::vector<float>> outs(8);
  std::vector<TorchGenerator> gens(8);
  auto singles = [&] {
    for (int i = 0; i < 8; ++i)
      hift.vocode(std::span<const float>(mel.data(), size_t(chunk * 80)), chunk, gens[size_t(i)]);
  };
  auto batch = [&] {
    std::vector<HiftRequest> reqs(8);
    for (int i = 0; i < 8; ++i) {
      reqs[size_t(i)].mel = std::span<const float>(mel.data(), size_t(chunk * 80));
      reqs[size_t(i)].frames = chunk;
      reqs[size_t(i)].rng = &gens[size_t(i)];
      reqs[size_t(i)].speech = &outs[size_t(i)];
    }
    hift.vocode(reqs);
  };
  // Alternating rounds, best of each: this host's noise moves single runs by 10-30 %.
  double single = 1e30, batched = 1e30;
  for (int round = 0; round < 5; ++round) {
    single = std::min(single, bench::time_best(singles, 0.0));
    batched = std::min(batched, bench::time_best(batch, 0.0));
  }
  std::printf("8 streams x 1 s: 8 single calls %.3f s, one batched call %.3f s (%.2fx)\n", single,
              batched, single / batched);
  return 0;
}
