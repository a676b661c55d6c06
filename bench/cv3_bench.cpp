// CosyVoice3's flow (the DiT) and vocoder (CausalHiFTGenerator) at the released sizes with
// random weights:
//   - offline: each stage's RTF for --seconds of audio after a 2 s prompt, and the DiT's
//     achieved GFLOP/s as a fraction of this machine's peak FMA rate (measured in this run);
//   - streaming the same tokens with the official schedule: the flow and vocoder
//     recomputing every chunk (the official code) against incremental, and incremental
//     with a chunk-causal last chunk (not the official output), in the same run, with each
//     chunk's seconds: incremental chunks cost what their own frames cost, recomputed ones
//     grow with the prefix. --hop N makes every chunk N tokens (first and largest hop).
//   build/bench/cv3_bench [--seconds S] [--hop N] [--no-recompute]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/machine_limits.h"
#include "model/dit/token2wav.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "random_weights.h"

using namespace cosy;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool is_gain(const ParamSpec& s) {
  return (s.shape.size() == 1 && s.name.ends_with(".weight") &&
          s.name.find("norm") != std::string::npos) ||
         s.name.ends_with(".alpha");
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int64_t hop = 0;  // 0: the official schedule (25, doubling up to 100)
  bool recompute = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (std::strcmp(argv[i], "--hop") == 0 && i + 1 < argc) {
      hop = std::stoll(argv[++i]);
      if (hop < 1) {
        std::fprintf(stderr, "--hop must be >= 1\n");
        return 2;
      }
    } else if (std::strcmp(argv[i], "--no-recompute") == 0) {
      recompute = false;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  std::printf("machine: %d threads, peak FMA %.1f GFLOP/s\n", pool.num_threads(), lim.peak_gflops);
  const ModelConfig c = preset_config("cosyvoice3-0.5b");
  auto backend = cpu::create_cpu_backend();
  auto flow_specs = flow_param_specs(c.flow);
  std::erase_if(flow_specs, [](const ParamSpec& s) { return s.optional; });  // computed buffers
  const StateDict flow_sd = bench::random_weights(flow_specs, "flow", is_gain);
  const StateDict hift_sd = bench::random_weights(hift_param_specs(c.hift), "hift", is_gain);
  const DitFlowModel flow(*backend, c.flow, flow_sd);
  const CausalHiftVocoder hift(*backend, c.hift, hift_sd, causal_hift_noise_offset(c));

  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> speech(0, 6560);
  std::vector<int32_t> prompt(50), tokens(static_cast<size_t>(seconds * 25));
  for (auto& t : prompt) t = speech(rng);
  for (auto& t : tokens) t = speech(rng);
  const std::vector<float> prompt_feat(2 * prompt.size() * 80, -4.0f), xvec(192, 0.1f);

  // Offline: one flow call, one vocoder call.
  std::vector<float> mel;
  auto t0 = std::chrono::steady_clock::now();
  DitFlowRequest r;
  r.prompt_tokens = prompt;
  r.tokens = tokens;
  r.prompt_feat = prompt_feat;
  r.embedding = xvec;
  r.mel = &mel;
  flow.infer({&r, 1});
  const double flow_s = seconds_since(t0);
  const auto frames = static_cast<int64_t>(2 * (prompt.size() + tokens.size()));
  const double dit_flops = 2.0 * 10 * flow.estimator().flops(frames);  // CFG 2, 10 steps
  std::vector<float> speech_out;
  t0 = std::chrono::steady_clock::now();
  CausalHiftRequest h;
  h.mel = mel;
  h.frames = static_cast<int64_t>(mel.size()) / 80;
  h.speech = &speech_out;
  hift.vocode({&h, 1});
  const double hift_s = seconds_since(t0);
  std::printf(
      "offline %.1f s of audio (2 s prompt): flow %.2f s (RTF %.3f, DiT %.1f GFLOP -> %.1f "
      "GFLOP/s, %.1f%% of peak), vocoder %.2f s (RTF %.3f)\n",
      seconds, flow_s, flow_s / seconds, dit_flops / 1e9, dit_flops / flow_s / 1e9,
      100 * dit_flops / flow_s / 1e9 / lim.peak_gflops, hift_s, hift_s / seconds);

  // Streaming with the official schedule: incremental, incremental with a chunk-causal last
  // chunk, and recomputing, in the same run.
  struct Way {
    bool incremental, full_attention_last;
    const char* name;
  };
  for (const Way way :
       {Way{true, true, "incremental"}, Way{true, false, "incremental, chunk-causal last chunk"},
        Way{false, true, "recomputing (official)"}}) {
    if (!way.incremental && !recompute) break;
    Cv3StreamOptions o;
    o.incremental = way.incremental;
    o.final_full_attention = way.full_attention_last;
    if (hop > 0) o.first_hop = o.max_hop = hop;
    Cv3Token2Wav s(flow, hift, prompt, prompt_feat, xvec, o);
    s.push_tokens(tokens);
    s.finish();
    t0 = std::chrono::steady_clock::now();
    int chunks = 0;
    int64_t samples = 0;
    double first = 0;
    std::string each;
    auto tc = t0;
    while (!s.done()) {
      const Cv3Chunk ch = s.step();
      if (chunks++ == 0) first = seconds_since(t0);
      char one[32];
      std::snprintf(one, sizeof one, "%s%.2f", each.empty() ? "" : " ", seconds_since(tc));
      each += one;
      tc = std::chrono::steady_clock::now();
      samples += static_cast<int64_t>(ch.audio.size());
    }
    const double total = seconds_since(t0);
    std::printf(
        "streaming, %s: %d chunks, first chunk %.2f s, total %.2f s (RTF %.3f), %lld samples\n"
        "  seconds per chunk: %s\n",
        way.name, chunks, first, total, total / seconds, static_cast<long long>(samples),
        each.c_str());
  }
  return 0;
}
