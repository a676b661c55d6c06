// The speech LM at full CosyVoice2 size (Qwen2.5-0.5B dims: hidden 896, 24 layers, 14
// heads, 2 KV heads, MLP 4864; 6564-way speech head) with random weights. For each weight
// format and batch size: B streams prefill a 50-position prompt together, then decode
// --tokens tokens each in batched steps (forward, head, log-softmax, per-stream RAS
// sampling), as the runner does. Reports decode tokens/s, the fraction of DRAM read
// bandwidth the batch-1 weight stream reaches, and the fraction of peak FMA at the
// largest batch; then the top-1 agreement of each format with fp32 under teacher forcing.
// The formats are fp32, fp16 and int8, and w8a8 (int8 activations too) on a CPU with
// AVX512-VNNI; its "% peak" is of the float32 FMA peak, as the others'.
//   build/bench/llm_bench [--tokens N] [--batches 1,4,16,64] [--formats fp32,fp16,int8,w8a8]
//                         [--agreement N] [--guard-rounds N] [--beam-rounds N]
// --guard-rounds (default 5): the quality guard's cost, as a share of a batch-16 fp32 decode
// step through the runner (runtime/lm_runner.h, sessions and all), the guard off and on in
// alternating rounds of --tokens steps; the median round of each is compared.
// --beam-rounds (default 3): beam search's cost against sampling: 4 streams through the
// runner, decoded by sampling and by 2 and 4 beams (alternating order, median round): ms per
// step, and the beams' own selection work on the host per step.
// The text vocabulary is cut to 1000 rows: the text table is only read at prefill, one row
// per text token, and 151 936 random rows would only slow the setup.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/machine_limits.h"
#include "model/lm/speech_lm.h"
#include "model/lm/teacher_forcing.h"
#include "model/model_writer.h"
#include "model/param_schema.h"
#include "random_weights.h"
#include "runtime/lm_decoder.h"
#include "runtime/lm_runner.h"
#include "runtime/sampler.h"

using namespace cosy;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

struct DecodeResult {
  double prefill_s = 0, decode_s = 0;
  int64_t steps = 0;
};

// B streams: prefill the same-shaped 50-position prompt, then `tokens` decode steps.
DecodeResult run_batch(Backend& backend, const SpeechLm& lm, int64_t batch, int64_t tokens) {
  const int64_t h = lm.hidden(), v = lm.vocab().size();
  const int64_t positions = 50 + tokens + 1;
  const int64_t block = 16, per_stream = (positions + block - 1) / block;
  PagedKvPool pool(backend, lm.backbone().kv_geometry(batch * per_stream, block));
  auto stream = backend.create_stream();
  Exec e(backend, *stream);
  Qwen2Workspace ws;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> text(0, static_cast<int32_t>(lm.text_vocab() - 1));
  std::uniform_int_distribution<int32_t> speech(0, lm.vocab().speech_tokens - 1);

  std::vector<PagedKvPool::SeqId> seqs;
  std::vector<TokenSampler> samplers;
  std::vector<std::vector<int32_t>> history(static_cast<size_t>(batch));
  std::vector<float> inputs, hidden(static_cast<size_t>(batch * h)),
      logp(static_cast<size_t>(batch * v));
  std::vector<Qwen2Chunk> chunks;
  for (int64_t b = 0; b < batch; ++b) {
    seqs.push_back(pool.create());
    SamplingParams sp;
    sp.seed = static_cast<uint64_t>(b);
    samplers.emplace_back(sp);
  }
  // Prompt: sos, 10 text tokens, task_id, 38 prompt speech tokens.
  std::vector<LmInput> prompt = {{LmInputKind::Sos, 0}};
  for (int i = 0; i < 10; ++i) prompt.push_back({LmInputKind::Text, text(rng)});
  prompt.push_back({LmInputKind::TaskId, 0});
  for (int i = 0; i < 38; ++i) prompt.push_back({LmInputKind::Speech, speech(rng)});
  const auto p = static_cast<int64_t>(prompt.size());
  inputs.resize(static_cast<size_t>(batch * p * h));
  for (int64_t b = 0; b < batch; ++b) {
    lm.embed(e, prompt, inputs.data() + b * p * h);
    chunks.push_back(
        {seqs[static_cast<size_t>(b)], inputs.data() + b * p * h, p, hidden.data() + b * h});
  }
  const SpeechVocab sv = lm.vocab();
  const std::vector<int32_t> stops = sv.specials_except();
  auto head_and_sample = [&](std::vector<LmInput>& next) {
    lm.logits(e, hidden.data(), batch, logp.data());
    e.k.softmax(e.s, logp.data(), batch, v, true);
    next.clear();
    for (int64_t b = 0; b < batch; ++b) {
      auto& hist = history[static_cast<size_t>(b)];
      const int32_t t = samplers[static_cast<size_t>(b)].sample(
          {logp.data() + b * v, static_cast<size_t>(v)}, stops, hist);
      hist.push_back(t);
      next.push_back({LmInputKind::Speech, t});
    }
  };
  DecodeResult r;
  std::vector<LmInput> next;
  auto t0 = std::chrono::steady_clock::now();
  lm.backbone().forward(e, pool, chunks, ws);
  head_and_sample(next);
  r.prefill_s = seconds_since(t0);

  inputs.resize(static_cast<size_t>(batch * h));
  t0 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < tokens; ++step) {
    lm.embed(e, next, inputs.data());
    for (int64_t b = 0; b < batch; ++b) {
      chunks[static_cast<size_t>(b)].inputs = inputs.data() + b * h;
      chunks[static_cast<size_t>(b)].rows = 1;
    }
    lm.backbone().forward(e, pool, chunks, ws);
    head_and_sample(next);
  }
  r.decode_s = seconds_since(t0);
  r.steps = tokens;
  return r;
}

// Stream b of a runner benchmark: a 10-token prompt text, 30 prompt speech tokens and 8
// text tokens of its own, then exactly `length` speech tokens.
LmSessionOptions bench_stream(int64_t b, int64_t length) {
  LmSessionOptions o;
  for (int32_t i = 0; i < 10; ++i) o.prompt_text.push_back(100 + i);
  for (int32_t i = 0; i < 30; ++i) o.prompt_speech.push_back(static_cast<int32_t>(b * 37 + i * 11));
  for (int32_t i = 0; i < 8; ++i) o.text.push_back(static_cast<int32_t>(200 + b + i));
  o.sampling.seed = static_cast<uint64_t>(b + 1);
  o.fixed_tokens = length;
  return o;
}

// Seconds per decode step of `streams` decoders of `beams` hypotheses (1: sampling), the
// guard on or off, through the runner. Stops are banned (a fixed length), so every
// hypothesis runs every step.
double decode_step_seconds(Backend& backend, const SpeechLm& lm, int64_t streams, int64_t beams,
                           bool guard, int64_t tokens) {
  LmRunnerOptions ro;
  ro.kv_blocks = streams * beams * ((60 + tokens) / 16 + 3);
  ro.voice_prefixes = 0;
  LmRunner runner(backend, lm, ro);
  const LmSessionLimits limits = LmSessionLimits::of(lm);
  std::vector<std::unique_ptr<LmDecoder>> decoders;
  std::vector<LmDecoder*> all;
  for (int64_t b = 0; b < streams; ++b) {
    LmSessionOptions o = bench_stream(b, tokens + 2);
    o.guard.enabled = guard;
    decoders.push_back(std::make_unique<LmDecoder>(limits, o, BeamSearchOptions{beams, 1.0}));
    all.push_back(decoders.back().get());
  }
  runner.step(all);  // prefill
  runner.step(all);  // the first step widens a beam search to `beams` hypotheses
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < tokens; ++i) runner.step(all);
  return seconds_since(t0) / static_cast<double>(tokens);
}

// Seconds of one beam search's selection per step on the host (candidates, copies, the
// sessions' advance), over the same log-probabilities for every hypothesis.
double beam_select_seconds(const LmSessionLimits& limits, const std::vector<float>& logp,
                           int64_t beams, int64_t n) {
  LmSessionOptions o;
  o.prompt_text = {1, 2};
  o.prompt_speech = {1, 2, 3};
  o.text = {1, 2, 3, 4, 5, 6, 7, 8};
  o.fixed_tokens = n + 2;
  LmDecoder d(limits, o, {beams, 1.0});
  std::vector<std::span<const float>> rows;
  const auto step = [&] {
    rows.assign(d.hypotheses().size(), logp);
    d.advance(rows);
  };
  step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) step();
  return seconds_since(t0) / static_cast<double>(n);
}

// Seconds of one session's advance() per token (sampling, and the guard's detectors when
// on), over `n` tokens of the same log-probabilities: the guard's own work, free of the
// step's noise.
double advance_seconds(const LmSessionLimits& limits, const std::vector<float>& logp, bool guard,
                       int64_t n) {
  LmSessionOptions o;
  o.prompt_text = {1, 2};
  o.prompt_speech = {1, 2, 3};
  o.text = {1, 2, 3, 4, 5, 6, 7, 8};
  o.fixed_tokens = n + 1;
  o.guard.enabled = guard;
  LmSession s(limits, o);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) s.advance(logp);
  return seconds_since(t0) / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t tokens = 200, agreement = 500, guard_rounds = 5, beam_rounds = 3;
  std::vector<int64_t> batches = {1, 4, 16, 64};
  std::vector<std::string> formats = {"fp32", "fp16", "int8"};
  bool formats_given = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
      tokens = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      batches.clear();
      for (const auto& b : split(argv[++i])) batches.push_back(std::stoll(b));
    } else if (std::strcmp(argv[i], "--formats") == 0 && i + 1 < argc) {
      formats = split(argv[++i]);
      formats_given = true;
    } else if (std::strcmp(argv[i], "--agreement") == 0 && i + 1 < argc) {
      agreement = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--guard-rounds") == 0 && i + 1 < argc) {
      guard_rounds = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--beam-rounds") == 0 && i + 1 < argc) {
      beam_rounds = std::stoll(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  auto backend = cpu::create_cpu_backend();
  if (!formats_given && backend->supports_weight_format(WeightFormat::W8A8))
    formats.emplace_back("w8a8");
  ThreadPool& pool = ThreadPool::global();
  const auto lim = bench::measure_machine(pool);
  std::printf("machine: %d threads, peak FMA %.1f GFLOP/s, DRAM read %.1f GB/s\n",
              pool.num_threads(), lim.peak_gflops, lim.dram_read_gbps);
  LlmConfig cfg = preset_config("cosyvoice2-0.5b").llm;
  cfg.qwen.vocab_size = 1000;
  const StateDict sd = bench::random_weights(
      llm_param_specs(cfg), "random llm",
      [](const ParamSpec& s) { return s.shape.size() == 1 && s.name.ends_with("norm.weight"); });

  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> speech(0, static_cast<int32_t>(cfg.speech_token_size - 1));
  std::vector<LmInput> long_seq = {{LmInputKind::Sos, 0}, {LmInputKind::TaskId, 0}};
  for (int64_t i = 0; i < agreement; ++i) long_seq.push_back({LmInputKind::Speech, speech(rng)});
  TeacherForced reference;

  for (const std::string& f : formats) {
    const SpeechLm lm(*backend, cfg, sd, parse_weight_format(f));
    const double bytes = static_cast<double>(lm.weight_bytes());
    double tps1 = 0;
    for (int64_t b : batches) {
      const DecodeResult r = run_batch(*backend, lm, b, tokens);
      const double step_s = r.decode_s / static_cast<double>(r.steps);
      const double tps = static_cast<double>(b * r.steps) / r.decode_s;
      if (b == 1) tps1 = tps;
      const double flops =
          lm.backbone().linear_flops(b) + lm.decoder_flops(b);  // per step, attention excluded
      std::printf(
          "llm %s batch %3lld: decode %7.1f tokens/s (%.1f ms/step), prefill %lldx50 in %.2f s"
          " | weights %.2f GB/step -> %.1f GB/s (%.0f%% DRAM) | %.1f GFLOP/s (%.1f%% peak)%s\n",
          f.c_str(), static_cast<long long>(b), tps, step_s * 1e3, static_cast<long long>(b),
          r.prefill_s, bytes / 1e9, bytes / step_s / 1e9,
          100 * bytes / step_s / 1e9 / lim.dram_read_gbps, flops / step_s / 1e9,
          100 * flops / step_s / 1e9 / lim.peak_gflops,
          tps1 > 0 && b > 1
              ? (" | " + std::to_string(tps / tps1).substr(0, 5) + "x batch 1").c_str()
              : "");
    }
    if (f == "fp32" && guard_rounds > 0) {
      std::vector<double> off, on;
      for (int64_t r = 0; r < guard_rounds; ++r) {
        // Each goes first in every other round: neither gains from what the other left warm.
        for (const bool guard : {r % 2 == 1, r % 2 == 0}) {
          (guard ? on : off).push_back(decode_step_seconds(*backend, lm, 16, 1, guard, tokens));
        }
      }
      const double a = median(off), b = median(on);
      std::printf(
          "llm fp32 batch  16 through the runner: %.2f ms/step guard off, %.2f ms/step "
          "guard on (median of %lld rounds each, alternating): %+.2f%%\n",
          a * 1e3, b * 1e3, static_cast<long long>(guard_rounds), 100 * (b - a) / a);
      // The same cost measured directly: advance() per token, the guard on and off.
      std::vector<float> logp(static_cast<size_t>(lm.vocab().size()));
      std::normal_distribution<float> noise(-9, 1);
      for (float& x : logp) x = noise(rng);
      std::vector<double> a1, b1;
      for (int64_t r = 0; r < guard_rounds; ++r) {
        a1.push_back(advance_seconds(LmSessionLimits::of(lm), logp, false, 2000));
        b1.push_back(advance_seconds(LmSessionLimits::of(lm), logp, true, 2000));
      }
      const double per_token = median(b1) - median(a1);
      std::printf(
          "quality guard: %.1f us per token on top of %.1f us of sampling; 16 of them are "
          "%.2f%% of the batch-16 step above\n",
          per_token * 1e6, median(a1) * 1e6, 100 * 16 * per_token / a);
    }
    if (f == "fp32" && beam_rounds > 0) {
      const std::vector<int64_t> widths = {1, 2, 4};
      std::vector<std::vector<double>> step(widths.size());
      for (int64_t r = 0; r < beam_rounds; ++r) {
        for (size_t k = 0; k < widths.size(); ++k) {
          const size_t w = (r % 2 == 0) ? k : widths.size() - 1 - k;  // alternate the order
          step[w].push_back(decode_step_seconds(*backend, lm, 4, widths[w], false, tokens));
        }
      }
      std::vector<float> logp(static_cast<size_t>(lm.vocab().size()));
      std::normal_distribution<float> noise(-9, 1);
      for (float& x : logp) x = noise(rng);
      const double base = median(step[0]);
      for (size_t w = 0; w < widths.size(); ++w) {
        const double s = median(step[w]);
        const double select = beam_select_seconds(LmSessionLimits::of(lm), logp, widths[w], 500);
        std::printf(
            "llm fp32 4 streams %s: %.2f ms/step (%.2fx sampling; %lld rows), host selection "
            "%.1f us per stream-step\n",
            widths[w] == 1 ? "sampled      " : (std::to_string(widths[w]) + " beams each").c_str(),
            s * 1e3, s / base, static_cast<long long>(4 * widths[w]), select * 1e6);
      }
    }
    if (agreement > 0) {
      const TeacherForced top = teacher_forced(*backend, lm, long_seq);
      if (f == "fp32") {
        reference = top;
      } else if (!reference.top1.empty()) {
        std::printf("llm %s teacher-forced top-1 agreement with fp32 over %zu positions: %.1f%%\n",
                    f.c_str(), top.top1.size(), 100.0 * top1_agreement(top, reference));
      }
    }
  }
  return 0;
}
