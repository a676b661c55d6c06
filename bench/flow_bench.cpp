// The flow at full CosyVoice2 size (encoder 512-d, estimator 256 channels with 12 mid
// blocks) with random weights:
//   - non-streaming: RTF and achieved GFLOP/s (fraction of this machine's peak FMA,
//     measured in the same run) for --seconds of audio, no prompt;
//   - streaming the same tokens with the official schedule, incremental;
//   - streaming --stream-seconds incremental vs the official prefix recompute (total time
//     and its ratio to one non-streaming call), unless --no-recompute.
//   - the counted work of the long stream's calls, and of the official recompute of the
//     same schedule (FlowModel::flops of each call, with and without the cached prefix);
//   - with --batch-streams N: N streams at different positions, one chunk each, as N
//     separate calls and as one batched call.
//   build/bench/flow_bench [--seconds S] [--stream-seconds S] [--no-recompute]
//                          [--causal-final] [--half-state]
//                          [--weights fp32|fp16|int8|bf16] [--no-amx]
//                          [--left-chunks N] [--batch-streams N]
//   build/bench/flow_bench --first-chunk HOP
// --weights other than fp32 also runs the non-streaming call with fp32 weights, for the
// speed ratio and the largest mel difference.
// --first-chunk times only a voice's first streaming chunk (3 s prompt, its state cached),
// the flow's share of the first-chunk latency.
// --left-chunks N bounds the estimator's streaming attention to N left chunks
// (num_decoding_left_chunks; changes the output, bounds the state).
// --half-state streams --stream-seconds again with fp32 and half-precision state and
// reports both memories, times and the largest mel difference.
// --no-amx runs bf16 GEMMs on AVX512_BF16 where they would run on AMX tiles.
// --causal-final keeps the final chunk chunk-causal and incremental (changes its output
// from the official full-attention final chunk, which recomputes the utterance once).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/gemm.h"
#include "kernels/machine_limits.h"
#include "model/flow/flow.h"
#include "model/flow/flow_stream.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "random_weights.h"

using namespace cosy;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Streams `tokens` to the end; returns the wall time (and the mel and the stream's flow
// calls, if asked).
double stream_all(const FlowModel& flow, const std::vector<int32_t>& tokens,
                  const std::vector<float>& embedding, bool incremental, bool causal_final,
                  size_t& state_peak, bool half_state = false,
                  std::vector<float>* mel_out = nullptr,
                  std::vector<FlowStream::Call>* calls = nullptr) {
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
  if (calls != nullptr) *calls = s.calls();
  return seconds_since(t0);
}

// Counted work of a stream's calls as they ran, and of the same schedule recomputed from
// the start at every call (the official streaming). `full_final`: as if the last call
// were the official full-attention final chunk (one non-streaming pass) in both.
std::pair<double, double> counted_flops(const FlowModel& flow,
                                        const std::vector<FlowStream::Call>& calls,
                                        bool full_final) {
  double ran = 0, recompute = 0;
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    if (full_final && i + 1 == calls.size()) {
      ran += flow.flops(c.tokens);
      recompute += flow.flops(c.tokens);
      continue;
    }
    ran += flow.flops(c.tokens, c.past, c.streaming);
    recompute += flow.flops(c.tokens, 0, c.streaming);
  }
  return {ran, recompute};
}

// N streams at different positions (stream i has run i chunks), then one more chunk of
// each: N separate calls against one batched call over two identical sets of streams.
void batched_vs_separate(const FlowModel& flow, int n, const std::vector<float>& embedding,
                         const std::function<std::vector<int32_t>(double)>& tokens_for) {
  std::vector<std::vector<int32_t>> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(tokens_for(20));
  std::vector<std::unique_ptr<FlowStream>> separate, batched;
  std::vector<std::vector<float>> mel_separate(n), mel_batched(n);
  for (auto* set : {&separate, &batched}) {
    for (int i = 0; i < n; ++i) {
      set->push_back(std::make_unique<FlowStream>(flow, std::span<const int32_t>{},
                                                  std::span<const float>{}, embedding));
      set->back()->push_tokens(tokens[size_t(i)]);
      std::vector<float> discard;
      for (int k = 0; k < i; ++k) {
        FlowStream::Step st{set->back().get(), &discard};
        FlowStream::step(flow, {&st, 1});
      }
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    FlowStream::Step st{separate[size_t(i)].get(), &mel_separate[size_t(i)]};
    FlowStream::step(flow, {&st, 1});
  }
  const double t_separate = seconds_since(t0);
  std::vector<FlowStream::Step> steps;
  for (int i = 0; i < n; ++i) steps.push_back({batched[size_t(i)].get(), &mel_batched[size_t(i)]});
  t0 = std::chrono::steady_clock::now();
  FlowStream::step(flow, steps);
  const double t_batched = seconds_since(t0);
  double worst = 0, frames = 0;
  for (int i = 0; i < n; ++i) {
    frames += double(mel_batched[size_t(i)].size()) / double(flow.mel_bins());
    for (size_t j = 0; j < mel_batched[size_t(i)].size(); ++j)
      worst = std::max(worst,
                       double(std::fabs(mel_batched[size_t(i)][j] - mel_separate[size_t(i)][j])));
  }
  std::printf(
      "flow %d streams at chunks 0..%d, one chunk each (%.0f frames): %d separate calls %.2f s, "
      "one batched call %.2f s (%.2fx), max mel difference %.1e\n",
      n, n - 1, frames, n, t_separate, t_batched, t_batched / t_separate, worst);
}

// A voice's first streaming chunk, as the engine runs it: a `prompt_s` prompt whose state
// is cached, then `hop` tokens plus the look-ahead. Prints its time and counted work.
void first_chunk(const FlowModel& flow, double prompt_s, int64_t hop, double peak_gflops,
                 const std::vector<float>& embedding,
                 const std::function<std::vector<int32_t>(double)>& tokens_for) {
  const auto prompt = tokens_for(prompt_s);
  const auto ratio = flow.config().token_mel_ratio;
  std::vector<float> feat(prompt.size() * size_t(ratio) * size_t(flow.mel_bins()));
  std::mt19937 rng(3);
  std::normal_distribution<float> d(-5.0f, 2.0f);
  for (auto& v : feat) v = d(rng);
  const FlowStreamState state = flow.prompt_state(prompt, feat, embedding);
  const int64_t la = flow.config().pre_lookahead_len;
  const auto tokens = tokens_for(double(hop + la) / 25.0);
  for (int run = 0; run < 3; ++run) {
    FlowStreamOptions opt;
    opt.first_hop = hop;
    FlowStream s(flow, prompt, feat, embedding, opt, &state);
    s.push_tokens(tokens);
    std::vector<float> mel;
    FlowStream::Step st{&s, &mel};
    const auto t0 = std::chrono::steady_clock::now();
    FlowStream::step(flow, {&st, 1});
    const double t = seconds_since(t0);
    const auto& c = s.calls().front();
    const double flops = flow.flops(c.tokens, c.past, c.streaming);
    std::printf(
        "flow first chunk (prompt %.1f s cached, hop %lld): %lld frames computed for %lld "
        "emitted, %.3f s, %.0f GFLOP -> %.1f GFLOP/s (%.1f%% of peak)\n",
        prompt_s, static_cast<long long>(hop), static_cast<long long>(c.tokens - c.past) * ratio,
        static_cast<long long>(mel.size() / size_t(flow.mel_bins())), t, flops / 1e9,
        flops / t / 1e9, 100 * flops / t / 1e9 / peak_gflops);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10, stream_seconds = 60;
  bool recompute = true, causal_final = false, half_state = false;
  int64_t left_chunks = -1;
  int batch_streams = 0;
  int64_t first_chunk_hop = 0;
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
    } else if (std::strcmp(argv[i], "--left-chunks") == 0 && i + 1 < argc) {
      left_chunks = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--first-chunk") == 0 && i + 1 < argc) {
      first_chunk_hop = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--batch-streams") == 0 && i + 1 < argc) {
      batch_streams = std::stoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--no-recompute") == 0) {
      recompute = false;
    } else if (std::strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
      weights = argv[++i];
    } else if (std::strcmp(argv[i], "--no-amx") == 0) {
      cpu::set_amx(false);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  FlowConfig cfg = preset_config("cosyvoice2-0.5b").flow;
  cfg.decoder.estimator.num_decoding_left_chunks = left_chunks;
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

  if (first_chunk_hop > 0) {
    first_chunk(flow, 3.0, first_chunk_hop, lim.peak_gflops, embedding, tokens_for);
    return 0;
  }
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
  if (weights != "fp32") {
    // The same call with fp32 weights: the baseline for both speed and output.
    const FlowModel exact(*backend, cfg, sd, WeightFormat::F32);
    std::vector<float> exact_mel;
    FlowRequest re = r;
    re.mel = &exact_mel;
    const auto t1 = std::chrono::steady_clock::now();
    exact.infer({&re, 1});
    const double t_exact = seconds_since(t1);
    double worst = 0, range = 0;
    for (size_t i = 0; i < std::min(mel.size(), exact_mel.size()); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(mel[i] - exact_mel[i])));
      range = std::max(range, static_cast<double>(std::fabs(exact_mel[i])));
    }
    std::printf(
        "flow fp32 non-streaming, same call: %.2f s (%s is %.2fx faster); max mel difference "
        "%.3g (max |mel| %.3g)\n",
        t_exact, weights.c_str(), t_exact / t_full, worst, range);
  }

  size_t state = 0;
  const double t_inc = stream_all(flow, tokens, embedding, true, causal_final, state);
  std::printf(
      "flow streaming (incremental), %.1f s: %.2f s, RTF %.3f, %.2fx non-streaming, "
      "state peak %.1f MB\n",
      seconds, t_inc, t_inc / seconds, t_inc / t_full, static_cast<double>(state) / 1e6);

  const auto long_tokens = tokens_for(stream_seconds);
  std::vector<FlowStream::Call> calls;
  const double t_long_inc =
      stream_all(flow, long_tokens, embedding, true, causal_final, state, false, nullptr, &calls);
  const double one_call = flow.flops(static_cast<int64_t>(long_tokens.size()));
  for (const bool full_final : {false, true}) {
    if (full_final && !causal_final) continue;  // the run's own calls already end so
    const auto [ran, recomputed] = counted_flops(flow, calls, full_final);
    std::printf(
        "flow streaming %.0f s, counted work of %zu calls (%s final chunk): incremental %.1f "
        "TFLOP = %.2fx one non-streaming call's %.1f; the official recompute of the same "
        "schedule %.1f TFLOP = %.2fx; recompute / incremental = %.2f\n",
        stream_seconds, calls.size(),
        full_final || !causal_final ? "official full-attention" : "chunk-causal", ran / 1e12,
        ran / one_call, one_call / 1e12, recomputed / 1e12, recomputed / one_call,
        recomputed / ran);
  }
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
  if (batch_streams > 0) batched_vs_separate(flow, batch_streams, embedding, tokens_for);
  if (recompute) {
    const double t_long_re = stream_all(flow, long_tokens, embedding, false, causal_final, state);
    std::printf(
        "flow streaming %.0f s recompute (official): %.2f s; incremental / recompute = %.3f\n",
        stream_seconds, t_long_re, t_long_inc / t_long_re);
  }
  return 0;
}
