// The speech LM against the official code's fixtures: input assembly, teacher-forced
// logits and hidden states through the KV-cache loop, greedy decoding with and without a
// prompt, and bistream (text fed token by token) down to the inputs of every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "golden_lm_util.h"
#include "kernels/cpu_backend.h"
#include "model/lm/speech_lm.h"
#include "model/model_folder.h"
#include "runtime/lm_runner.h"

namespace cosy {
namespace {

using golden::floats;
using golden::ints;
using golden::near;

using golden::kLogitTolerance;

class GoldenLlm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.flow = opt.hift = false;
    folder_ = new ModelFolder(load_model_folder(golden::model_dir(), opt));
    lm_ = new SpeechLm(*backend_, folder_->config.llm, folder_->llm);
  }
  static void TearDownTestSuite() {
    delete lm_;
    delete folder_;
    delete backend_;
  }

  static LmSessionOptions greedy(std::vector<int32_t> prompt_text,
                                 std::vector<int32_t> prompt_speech, std::vector<int32_t> text) {
    return golden::greedy_options(std::move(prompt_text), std::move(prompt_speech),
                                  std::move(text));
  }
  static std::vector<float> embed(std::span<const LmInput> in) {
    return golden::embed(*backend_, *lm_, in);
  }
  static std::vector<int32_t> run_greedy(LmSession& s, const std::string& top2_name) {
    return golden::run_greedy(*backend_, *lm_, s, floats(top2_name));
  }

  static Backend* backend_;
  static ModelFolder* folder_;
  static SpeechLm* lm_;
};
Backend* GoldenLlm::backend_ = nullptr;
ModelFolder* GoldenLlm::folder_ = nullptr;
SpeechLm* GoldenLlm::lm_ = nullptr;

TEST_F(GoldenLlm, InputAssemblyMatchesOfficialLmInput) {
  const LmSession with(
      LmSessionLimits::of(*lm_),
      greedy(ints("prompt_text_ids.npy"), ints("prompt_speech_tokens.npy"), ints("text_ids.npy")));
  EXPECT_TRUE(near(embed(with.pending()), floats("llm_lm_input.npy"), 0.0));
  const LmSession without(LmSessionLimits::of(*lm_),
                          greedy({}, {}, ints("llm_noprompt_text_ids.npy")));
  EXPECT_TRUE(near(embed(without.pending()), floats("llm_noprompt_lm_input.npy"), 0.0));
}

// The official KV-cache loop with forced tokens: row 0 after the prompt, row i after
// forced token i-1.
TEST_F(GoldenLlm, TeacherForcedLogitsAndHiddenStates) {
  const auto rows = golden::teacher_forced(*backend_, *lm_, floats("llm_lm_input.npy"),
                                           ints("llm_tf_tokens.npy"));
  EXPECT_TRUE(near(rows.hidden, floats("llm_tf_hidden.npy"), kLogitTolerance));
  EXPECT_TRUE(near(rows.logits, floats("llm_tf_logits.npy"), kLogitTolerance));
}

TEST_F(GoldenLlm, GreedyWithPromptMatchesExactly) {
  LmSession s(
      LmSessionLimits::of(*lm_),
      greedy(ints("prompt_text_ids.npy"), ints("prompt_speech_tokens.npy"), ints("text_ids.npy")));
  EXPECT_EQ(run_greedy(s, "llm_greedy_top2.npy"), ints("llm_greedy_tokens.npy"));
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
}

TEST_F(GoldenLlm, GreedyWithoutPromptMatchesExactly) {
  LmSession s(LmSessionLimits::of(*lm_), greedy({}, {}, ints("llm_noprompt_text_ids.npy")));
  EXPECT_EQ(run_greedy(s, "llm_noprompt_greedy_top2.npy"), ints("llm_noprompt_greedy_tokens.npy"));
}

// Text arrives one token at a time, only when the stream asks for it (as the official
// generator is pulled). Every step's inputs, and the tokens, must match.
TEST_F(GoldenLlm, BistreamMatchesStepInputsAndTokens) {
  auto opt = greedy(ints("prompt_text_ids.npy"), ints("prompt_speech_tokens.npy"), {});
  opt.bistream = true;
  LmSession s(LmSessionLimits::of(*lm_), opt);
  const auto run = golden::run_bistream(*backend_, *lm_, s, ints("llm_bistream_text_ids.npy"));
  EXPECT_EQ(run.input_lens, ints("llm_bistream_step_input_len.npy"));
  EXPECT_TRUE(near(run.inputs, floats("llm_bistream_all_inputs.npy"), 0.0));
  EXPECT_EQ(s.tokens(), ints("llm_bistream_tokens.npy"));
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
}

// N streams with different prompts, sampling and start times decode in one batch; each
// stream's tokens and every step's log-probs equal running it alone.
TEST_F(GoldenLlm, BatchedStreamsEqualEachAlone) {
  const auto prompt_text = ints("prompt_text_ids.npy");
  const auto prompt_speech = ints("prompt_speech_tokens.npy");
  const auto text = ints("text_ids.npy");
  struct Spec {
    size_t prompt_text, prompt_speech, text;
    SamplingMethod method;
    int start;  // the batch step at which the stream joins
    bool bistream;
  };
  const std::vector<Spec> specs = {
      {7, 20, 9, SamplingMethod::Greedy, 0, false}, {0, 0, 6, SamplingMethod::Ras, 0, false},
      {3, 11, 9, SamplingMethod::Ras, 2, false},    {7, 20, 4, SamplingMethod::TopKTopP, 5, false},
      {7, 5, 9, SamplingMethod::Ras, 3, true},
  };
  // Lengths are caps: a fixture set with shorter inputs gives shorter streams.
  auto head = [](const std::vector<int32_t>& v, size_t n) {
    return std::vector<int32_t>(v.begin(),
                                v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
  };
  auto options = [&](const Spec& sp, uint64_t seed) {
    LmSessionOptions o;
    o.prompt_text = head(prompt_text, sp.prompt_text);
    o.prompt_speech = head(prompt_speech, sp.prompt_speech);
    o.text = head(text, sp.text);
    o.bistream = sp.bistream;
    o.sampling.method = sp.method;
    o.sampling.seed = seed;
    o.keep_logp = true;
    return o;
  };
  struct Trace {
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> logp;
  };
  // Bistream text arrives all at once, then ends.
  auto start = [&](LmSession& s, const Spec& sp) {
    if (!sp.bistream) return;
    s.push_text(head(text, sp.text));
    s.end_text();
  };
  std::vector<Trace> alone(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    LmRunner runner(*backend_, *lm_);
    LmSession s(LmSessionLimits::of(*lm_), options(specs[i], 100 + i));
    start(s, specs[i]);
    LmSession* one[] = {&s};
    while (!s.finished()) {
      runner.step(one);
      alone[i].logp.push_back(s.last_logp());
    }
    alone[i].tokens = s.tokens();
  }

  LmRunner runner(*backend_, *lm_, {64, 4});  // small blocks: tables span many blocks
  std::vector<std::unique_ptr<LmSession>> sessions(specs.size());
  std::vector<Trace> batched(specs.size());
  int64_t max_batch = 0;
  size_t prefix_rows = 0;
  for (int step = 0;; ++step) {
    std::vector<LmSession*> live;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!sessions[i] && specs[i].start == step) {
        sessions[i] =
            std::make_unique<LmSession>(LmSessionLimits::of(*lm_), options(specs[i], 100 + i));
        start(*sessions[i], specs[i]);
      }
      if (sessions[i] && !sessions[i]->finished()) live.push_back(sessions[i].get());
    }
    if (live.empty() && step > 5) break;
    const LmStepStats st = runner.step(live);
    max_batch = std::max(max_batch, st.sessions);
    prefix_rows += st.prefix_rows;
    for (LmSession* s : live) {
      const size_t i = static_cast<size_t>(
          std::find_if(sessions.begin(), sessions.end(), [&](auto& p) { return p.get() == s; }) -
          sessions.begin());
      batched[i].logp.push_back(s->last_logp());
    }
  }
  EXPECT_GE(max_batch, 4);
  // Streams 0 and 3 share their voice prefix (sos + 7 prompt text ids, when this fixture
  // set has them): 3 starts from the rows 0 left in the runner's cache.
  EXPECT_GE(prefix_rows, prompt_text.size() >= 7 ? 8 : 0);
  EXPECT_EQ(runner.pool().sequences(), runner.cached_prefixes());
  runner.drop_voice_prefixes();
  EXPECT_EQ(runner.pool().sequences(), 0);
  EXPECT_EQ(runner.pool().free_blocks(), 64);
  for (size_t i = 0; i < specs.size(); ++i) {
    batched[i].tokens = sessions[i]->tokens();
    EXPECT_EQ(batched[i].tokens, alone[i].tokens) << "stream " << i;
    ASSERT_EQ(batched[i].logp.size(), alone[i].logp.size()) << "stream " << i;
    for (size_t t = 0; t < alone[i].logp.size(); ++t)
      ASSERT_TRUE(near(batched[i].logp[t], alone[i].logp[t], 1e-5))
          << "stream " << i << " step " << t;
  }
}

// A pool too small for a stream fails that stream with a message and no other; a full
// pool defers streams instead of failing them; a cancelled stream frees its blocks.
TEST_F(GoldenLlm, RunnerFailsDefersAndReleasesPerStream) {
  // Nine text ids, whatever this fixture set's text: the pool below is sized for them.
  std::vector<int32_t> text;
  for (int32_t i = 0; i < 9; ++i) text.push_back(i % static_cast<int32_t>(lm_->text_vocab()));
  auto opts = [&](size_t prompt) {
    LmSessionOptions o;
    o.text = text;
    o.prompt_speech.assign(prompt, 5);
    o.sampling.method = SamplingMethod::Greedy;
    return o;
  };
  LmRunner runner(*backend_, *lm_, {4, 4});              // 16 positions in all
  LmSession big(LmSessionLimits::of(*lm_), opts(20));    // 31 positions: never fits
  LmSession small(LmSessionLimits::of(*lm_), opts(0));   // 11 positions: 3 blocks
  LmSession second(LmSessionLimits::of(*lm_), opts(0));  // must wait for `small`
  LmSession* all[] = {&big, &small, &second};
  const LmStepStats st = runner.step(all);
  EXPECT_EQ(big.finish_reason(), LmFinish::Error);
  EXPECT_NE(big.error().find("KV blocks"), std::string::npos) << big.error();
  EXPECT_EQ(st.sessions, 1);
  EXPECT_EQ(st.deferred, 1);
  EXPECT_TRUE(second.ready());
  small.cancel();
  runner.step(all);  // releases the cancelled stream, then `second` fits
  EXPECT_EQ(second.steps(), 1);
  EXPECT_EQ(runner.pool().sequences(), 1);
  runner.release(second);
  EXPECT_EQ(runner.pool().free_blocks(), 4);
}

// Two streams that each fit the pool but not together: once both wait for a block the
// other holds, the later one is evicted and recomputes its cache afterwards; both finish
// (no stall) with the tokens each gives alone.
TEST_F(GoldenLlm, FullPoolEvictsInsteadOfStalling) {
  std::vector<int32_t> text;
  for (int32_t i = 0; i < 9; ++i)
    text.push_back((i * 7 + 1) % static_cast<int32_t>(lm_->text_vocab()));
  auto opts = [&](int32_t speech) {
    LmSessionOptions o;
    o.text = text;
    o.prompt_speech.assign(1, speech);
    o.sampling.method = SamplingMethod::Greedy;
    o.fixed_tokens = 8;  // 12 prompt positions + 8 steps: 5 blocks of 4
    return o;
  };
  auto run = [&](std::vector<LmSession*> sessions, LmRunner& runner, int64_t* evicted) {
    for (int i = 0; i < 200; ++i) {
      bool live = false;
      for (auto* s : sessions) live = live || !s->finished();
      if (!live) return;
      *evicted += runner.step(sessions).evicted;
    }
    FAIL() << "the streams did not finish";
  };
  std::vector<std::vector<int32_t>> alone;
  for (const int32_t speech : {5, 9}) {
    LmRunner runner(*backend_, *lm_, {8, 4});
    LmSession s(LmSessionLimits::of(*lm_), opts(speech));
    int64_t evicted = 0;
    run({&s}, runner, &evicted);
    EXPECT_EQ(evicted, 0);
    alone.push_back(s.tokens());
  }
  LmRunner runner(*backend_, *lm_, {8, 4});  // 32 positions: one stream's 20, not two
  LmSession a(LmSessionLimits::of(*lm_), opts(5));
  LmSession b(LmSessionLimits::of(*lm_), opts(9));
  int64_t evicted = 0;
  run({&a, &b}, runner, &evicted);
  EXPECT_GE(evicted, 1);
  EXPECT_GE(b.evictions(), 1);
  EXPECT_EQ(a.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(b.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(a.tokens(), alone[0]);
  EXPECT_EQ(b.tokens(), alone[1]);
  EXPECT_EQ(runner.pool().free_blocks(), 8);
  // A stream that outgrows the whole pool while decoding fails with a message, not a wait.
  LmRunner small(*backend_, *lm_, {4, 4});
  LmSession c(LmSessionLimits::of(*lm_), opts(5));
  int64_t none = 0;
  run({&c}, small, &none);
  EXPECT_EQ(c.finish_reason(), LmFinish::Error);
  EXPECT_NE(c.error().find("KV blocks"), std::string::npos) << c.error();
}

// Cached voice prefixes hold pool blocks; a stream that needs them gets them (the cache
// lets go before any stream is made to wait or evicted), with the tokens it gives alone.
TEST_F(GoldenLlm, CachedVoicePrefixesYieldToStreams) {
  const auto vocab = static_cast<int32_t>(lm_->text_vocab());
  auto opts = [&](int32_t voice) {
    LmSessionOptions o;
    for (int32_t i = 0; i < 7; ++i) o.prompt_text.push_back((voice * 31 + i * 5) % vocab);
    for (int32_t i = 0; i < 3; ++i) o.text.push_back((i * 7 + 1) % vocab);
    o.prompt_speech.assign(4, 5);
    o.sampling.method = SamplingMethod::Greedy;
    o.fixed_tokens = 8;  // 16 prompt positions + 8 steps: 6 blocks of 4
    return o;
  };
  auto run = [&](LmSession& s, LmRunner& runner) {
    LmSession* one[] = {&s};
    for (int i = 0; i < 100 && !s.finished(); ++i) runner.step(one);
  };
  LmRunner roomy(*backend_, *lm_, {64, 4});
  LmSession alone(LmSessionLimits::of(*lm_), opts(2));
  run(alone, roomy);
  ASSERT_EQ(alone.finish_reason(), LmFinish::MaxLength);

  LmRunner runner(*backend_, *lm_, {7, 4});
  LmSession a(LmSessionLimits::of(*lm_), opts(1));
  run(a, runner);
  ASSERT_EQ(a.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(runner.cached_prefixes(), 1);
  EXPECT_EQ(runner.pool().free_blocks(), 5);        // the prefix's 8 rows: 2 blocks
  LmSession b(LmSessionLimits::of(*lm_), opts(2));  // another voice: 6 blocks
  run(b, runner);
  EXPECT_EQ(b.finish_reason(), LmFinish::MaxLength) << b.error();
  EXPECT_EQ(b.evictions(), 0);
  EXPECT_EQ(b.tokens(), alone.tokens());
  EXPECT_EQ(runner.cached_prefixes(), 0);
  EXPECT_EQ(runner.pool().free_blocks(), 7);
}

// fp16, int8 and (where the CPU has VNNI) w8a8 weights against fp32, teacher-forced over a
// long sequence: top-1 agreement of the speech head, and the largest log-prob difference.
TEST_F(GoldenLlm, ReducedPrecisionWeightsAgreeWithFp32) {
  std::vector<LmInput> seq = {{LmInputKind::Sos, 0}};
  for (int32_t t : ints("text_ids.npy")) seq.push_back({LmInputKind::Text, t});
  seq.push_back({LmInputKind::TaskId, 0});
  std::mt19937 rng(9);
  std::uniform_int_distribution<int32_t> speech(0, lm_->vocab().speech_tokens - 1);
  while (seq.size() < 400) seq.push_back({LmInputKind::Speech, speech(rng)});
  auto log_probs = [&](const SpeechLm& lm) {
    const int64_t n = static_cast<int64_t>(seq.size()), h = lm.hidden(), v = lm.vocab().size();
    PagedKvPool pool(*backend_, lm.backbone().kv_geometry((n + 15) / 16, 16));
    auto stream = backend_->create_stream();
    Exec e(*backend_, *stream);
    Qwen2Workspace ws;
    std::vector<float> x(static_cast<size_t>(n * h)), hidden(x.size()),
        out(static_cast<size_t>(n * v));
    lm.embed(e, seq, x.data());
    const Qwen2Chunk c{pool.create(), x.data(), n, nullptr, hidden.data()};
    lm.backbone().forward(e, pool, {&c, 1}, ws);
    lm.logits(e, hidden.data(), n, out.data());
    e.k.softmax(e.s, out.data(), n, v, true);
    return out;
  };
  const auto ref = log_probs(*lm_);
  const int64_t v = lm_->vocab().size();
  const auto n = static_cast<int64_t>(seq.size());
  for (WeightFormat f : {WeightFormat::F16, WeightFormat::I8, WeightFormat::W8A8}) {
    if (!backend_->supports_weight_format(f)) continue;
    const SpeechLm q(*backend_, folder_->config.llm, folder_->llm, f);
    const auto got = log_probs(q);
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float* a = ref.data() + i * v;
      const float* b = got.data() + i * v;
      same += (std::max_element(a, a + v) - a) == (std::max_element(b, b + v) - b);
    }
    const double agree = static_cast<double>(same) / static_cast<double>(n);
    std::printf("[ %s ] top-1 agreement with fp32 over %lld positions: %.1f%%, %s\n",
                weight_format_name(f), static_cast<long long>(n), 100 * agree,
                ::testing::PrintToString(near(got, ref, 0.0).message()).c_str());
    EXPECT_GE(agree, f == WeightFormat::F16 ? 0.99 : 0.95) << weight_format_name(f);
  }
}

TEST_F(GoldenLlm, BadRequestsAreClearErrors) {
  const auto limits = LmSessionLimits::of(*lm_);
  LmSessionOptions o;
  EXPECT_THROW(LmSession(limits, o), Error);  // empty text
  o.text = {1, static_cast<int32_t>(lm_->text_vocab())};
  EXPECT_THROW(LmSession(limits, o), Error);  // beyond the text vocabulary
  o.text = {1};
  o.prompt_speech.assign(static_cast<size_t>(limits.max_positions), 1);
  EXPECT_THROW(LmSession(limits, o), Error);  // longer than the context
  std::vector<LmInput> bad = {{LmInputKind::Speech, lm_->vocab().size()}};
  std::vector<float> row(static_cast<size_t>(lm_->hidden()));
  auto stream = backend_->create_stream();
  Exec e(*backend_, *stream);
  EXPECT_THROW(lm_->embed(e, bad, row.data()), Error);
}

}  // namespace
}  // namespace cosy
