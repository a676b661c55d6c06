// The flow at full CosyVoice2 size (encoder 512-d, estimator 256 channels with 12 mid
// blocks) with random weights:
//   - non-streaming: RTF and achieved GFLOP/s (fraction of this machine's peak FMA,
//     measured in the same run) for --seconds of audio, no prompt;
//   - streaming the same tokens with the official schedule, incremental;
//   - streaming --stream-seconds incremental vs the official prefix recompute (total time
//     and its ratio to one non-streaming call), unless --no-recompute.
//   build/bench/flow_bench [--seconds S] [--stream-seconds S] [--no-recompute]
//                          [--causal-final] [--half-state] [--weights fp32|fp16|int8]
// --half-state streams --stream-seconds again with fp32 and half-precision state and
// reports both memories, times and the largest mel difference.
// --causal-final keeps the final chunk chunk-causal and incremental (changes its output
// from the official full-attention final chunk, which recomputes the utterance once).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/machine_limits.h"
#include "model/flow.h"
#include "model/flow_stream.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "random_weights.h"

using namespace cosy;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Streams `tokens` to the end; returns the wall time (and the mel, if asked).
double stream_all(const FlowModel& flow, const std::vector<int32_t>& tokens,
                  const std::vector<float>& embedding, bool incremental, bool causal_final,
                  size_t& state_peak, bool half_state = false,
                  std::vector<float>* mel_out = nullptr) {
  FlowStreamOptions opt;
  opt.incremental = incremental;
  opt.final_full_attention = !causal_final;
  opt.half_state = half_state;
  FlowStream s(flow, {}, {}, embedding, opt);
  s.push_tokens(tokens);
  s.finish();
  std::vector<float> local;
  std::vector<float>& mel = mel_out != nullptr ? *mel_out : local;
  const auto t0 = std::chrono::steady_clock::now();
  state_peak = 0;
  while (!s.done()) {
    FlowStream::Step st{&s, &mel};
    FlowStream::step(flow, {&st, 1});
    state_peak = std::max(state_peak, s.state().bytes());
  }
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10, stream_seconds = 60;
  bool recompute = true, causal_final = false, half_state = false;
  std::string weights = "fp32";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (std::strcmp(argv[i], "--stream-seconds") == 0 && i + 1 < argc) {
      stream_seconds = std::stod(argv[++i]);
    } else if (std::strcmp(argv[i], "--causal-final") == 0) {
      causal_final = true;
    } else if (std::strcmp(argv[i], "--half-state") == 0) {
      half_state = true;
    } else if (std::strcmp(argv[i], "--no-recompute") == 0) {
      recompute = false;
    } else if (std::strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
      weights = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  const FlowConfig cfg = preset_config("cosyvoice2-0.5b").flow;
  // LayerNorm gains (the only 1-D weights) at 1.
  const StateDict sd = bench::random_weights(
      flow_param_specs(cfg), "random flow",
      [](const ParamSpec& s) { return s.shape.size() == 1 && s.name.ends_with(".weight"); });
  auto backend = cpu::create_cpu_backend();
  const FlowModel flow(*backend, cfg, sd, parse_weight_format(weights));
  std::printf("machine: %d threads, peak FMA %.1f GFLOP/s, DRAM read %.1f GB/s\n",
              pool.num_threads(), lim.peak_gflops, lim.dram_read_gbps);

  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(cfg.vocab_size - 1));
  auto tokens_for = [&](double s) {
    std::vector<int32_t> t(static_cast<size_t>(s * 25));
    for (auto& v : t) v = tok(rng);
    return t;
  };
  std::vector<float> embedding(static_cast<size_t>(cfg.spk_embed_dim));
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& v : embedding) v = d(rng);

  const auto tokens = tokens_for(seconds);
  std::vector<float> mel;
  FlowRequest r;
  r.tokens = tokens;
  r.embedding = embedding;
  r.mel = &mel;
  const auto t0 = std::chrono::steady_clock::now();
  flow.infer({&r, 1});
  const double t_full = seconds_since(t0);
  const double flops = flow.flops(static_cast<int64_t>(tokens.size()));
  std::printf(
      "flow %s non-streaming, %.1f s of audio: %.2f s, RTF %.3f, %.0f GFLOP -> %.1f GFLOP/s "
      "(%.1f%% of peak)\n",
      weights.c_str(), seconds, t_full, t_full / seconds, flops / 1e9, flops / t_full / 1e9,
      100 * flops / t_full / 1e9 / lim.peak_gflops);

  size_t state = 0;
  const double t_inc = stream_all(flow, tokens, embedding, true, causal_final, state);
  std::printf(
      "flow streaming (incremental), %.1f s: %.2f s, RTF %.3f, %.2fx non-streaming, "
      "state peak %.1f MB\n",
      seconds, t_inc, t_inc / seconds, t_inc / t_full, static_cast<double>(state) / 1e6);

  const auto long_tokens = tokens_for(stream_seconds);
  const double t_long_inc = stream_all(flow, long_tokens, embedding, true, causal_final, state);
  std::printf(
      "flow streaming %.0f s incremental: %.2f s (RTF %.3f), state peak %.1f MB "
      "(%.2f MB per second of audio)\n",
      stream_seconds, t_long_inc, t_long_inc / stream_seconds, static_cast<double>(state) / 1e6,
      static_cast<double>(state) / 1e6 / stream_seconds);
  if (half_state) {
    // The long stream again, fp32 and half-precision state: memory, time and mel difference.
    std::vector<float> exact, half;
    size_t exact_peak = 0, half_peak = 0;
    const double t_exact =
        stream_all(flow, long_tokens, embedding, true, causal_final, exact_peak, false, &exact);
    const double t_half =
        stream_all(flow, long_tokens, embedding, true, causal_final, half_peak, true, &half);
    double worst = 0;
    for (size_t i = 0; i < std::min(exact.size(), half.size()); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(exact[i] - half[i])));
    std::printf(
        "flow streaming %.0f s, half-precision state: %.2f s (fp32 state %.2f s), state peak "
        "%.1f MB (fp32 %.1f MB), max mel difference %.2e\n",
        stream_seconds, t_half, t_exact, static_cast<double>(half_peak) / 1e6,
        static_cast<double>(exact_peak) / 1e6, worst);
  }
  if (recompute) {
    const double t_long_re = stream_all(flow, long_tokens, embedding, false, causal_final, state);
    std::printf(
        "flow streaming %.0f s recompute (official): %.2f s; incremental / recompute = %.3f\n",
        stream_seconds, t_long_re, t_long_inc / t_long_re);
  }
  return 0;
}
