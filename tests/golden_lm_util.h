// Drivers of the speech LM shared by the CosyVoice2 and CosyVoice3 golden tests: the input
// embeddings, the official KV-cache loop with forced tokens, a greedy run checked step by
// step, and a bistream run fed one text id at a time.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "golden_util.h"
#include "model/lm/speech_lm.h"
#include "runtime/lm_runner.h"

namespace cosy::golden {

constexpr double kLogitTolerance = 1e-4;  // both fixture READMEs

inline LmSessionOptions greedy_options(std::vector<int32_t> prompt_text,
                                       std::vector<int32_t> prompt_speech,
                                       std::vector<int32_t> text) {
  LmSessionOptions o;
  o.prompt_text = std::move(prompt_text);
  o.prompt_speech = std::move(prompt_speech);
  o.text = std::move(text);
  o.sampling.method = SamplingMethod::Greedy;
  o.keep_logp = true;
  return o;
}

inline std::vector<float> embed(Backend& backend, const SpeechLm& lm, std::span<const LmInput> in) {
  // The CPU backend's memory is the host's: the tests read its buffers directly.
  std::vector<float> out(in.size() * static_cast<size_t>(lm.hidden()));
  auto stream = backend.create_stream();
  Exec e(backend, *stream);
  lm.embed(e, in, out.data());
  return out;
}

// The official KV-cache loop with forced tokens, from the first input embeddings `x`:
// row 0 after the prompt, row i after forced token i-1.
struct TeacherForcedRows {
  std::vector<float> hidden, logits;
};
inline TeacherForcedRows teacher_forced(Backend& backend, const SpeechLm& lm, std::vector<float> x,
                                        const std::vector<int32_t>& forced) {
  const int64_t h = lm.hidden(), v = lm.vocab().size();
  PagedKvPool pool(backend, lm.backbone().kv_geometry(64, 16));
  auto stream = backend.create_stream();
  Exec e(backend, *stream);
  Qwen2Workspace ws;
  const auto seq = pool.create();
  TeacherForcedRows out;
  for (size_t step = 0; step <= forced.size(); ++step) {
    if (step > 0)
      x = embed(backend, lm, std::vector<LmInput>{{LmInputKind::Speech, forced[step - 1]}});
    std::vector<float> last(static_cast<size_t>(h)), row(static_cast<size_t>(v));
    const Qwen2Chunk chunk{seq, x.data(), static_cast<int64_t>(x.size()) / h, last.data()};
    lm.backbone().forward(e, pool, {&chunk, 1}, ws);
    lm.logits(e, last.data(), 1, row.data());
    out.hidden.insert(out.hidden.end(), last.begin(), last.end());
    out.logits.insert(out.logits.end(), row.begin(), row.end());
  }
  return out;
}

// Runs one session alone to the end; checks each step's best log-prob and id against
// `top2` ([steps, 4]: best, second, best id, second id); `on_step` sees each step's rule
// before it runs. Every block must come back.
template <typename OnStep>
std::vector<int32_t> run_greedy(Backend& backend, const SpeechLm& lm, LmSession& s,
                                const std::vector<float>& top2, OnStep on_step) {
  LmRunner runner(backend, lm);
  LmSession* one[] = {&s};
  size_t step = 0;
  while (!s.finished()) {
    on_step(step, s.next_rule());
    runner.step(one);
    const auto& lp = s.last_logp();
    const auto best = std::max_element(lp.begin(), lp.end());
    if (4 * step + 3 < top2.size()) {
      EXPECT_NEAR(*best, top2[4 * step], kLogitTolerance) << "step " << step;
      EXPECT_EQ(best - lp.begin(), static_cast<int64_t>(top2[4 * step + 2])) << "step " << step;
    }
    ++step;
  }
  EXPECT_EQ(4 * step, top2.size());
  EXPECT_EQ(runner.pool().sequences(), runner.cached_prefixes())
      << "a finished stream keeps KV blocks";
  runner.drop_voice_prefixes();
  EXPECT_EQ(runner.pool().free_blocks(), runner.pool().geometry().blocks);
  return s.tokens();
}
inline std::vector<int32_t> run_greedy(Backend& backend, const SpeechLm& lm, LmSession& s,
                                       const std::vector<float>& top2) {
  return run_greedy(backend, lm, s, top2, [](size_t, const LmStepRule&) {});
}

// A bistream session given its text one id at a time, only when it asks (as the official
// generator is pulled), then the end of the text: what each step fed, and the tokens.
struct BistreamRun {
  std::vector<int32_t> input_lens;
  std::vector<float> inputs;
  std::vector<std::vector<float>> logp;  // each step's
};
inline BistreamRun run_bistream(Backend& backend, const SpeechLm& lm, LmSession& s,
                                const std::vector<int32_t>& text) {
  size_t next_text = 0;
  LmRunner runner(backend, lm);
  BistreamRun out;
  LmSession* one[] = {&s};
  while (!s.finished()) {
    if (s.waiting_for_text()) {
      if (next_text < text.size()) {
        s.push_text({&text[next_text++], 1});
      } else {
        s.end_text();
      }
      continue;
    }
    out.input_lens.push_back(static_cast<int32_t>(s.pending().size()));
    const auto rows = embed(backend, lm, s.pending());
    out.inputs.insert(out.inputs.end(), rows.begin(), rows.end());
    runner.step(one);
    out.logp.push_back(s.last_logp());
  }
  return out;
}

}  // namespace cosy::golden
