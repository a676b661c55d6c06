// Beam search through the batched runner on a small random model: every hypothesis's
// log-probabilities, read from KV rows that were forked, shared and truncated, equal the
// ones computed from scratch for its tokens; beams batched with other streams, or evicted
// under pool pressure, decode as they do alone; and every KV block comes back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <vector>

#include "kernels/cpu_backend.h"
#include "model/lm/teacher_forcing.h"
#include "model/model_folder.h"
#include "model/test_model_util.h"
#include "runtime/lm_decoder.h"
#include "runtime/lm_runner.h"

namespace cosy {
namespace {

class BeamModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend(2).release();
    LoadOptions load;
    load.flow = load.hift = load.voices = false;
    folder_ = new ModelFolder(load_model_folder(
        testing::write_small_model("beam-model-" + std::to_string(::getpid())), load));
    lm_ = new SpeechLm(*backend_, folder_->config.llm, folder_->llm, WeightFormat::F32);
  }
  static void TearDownTestSuite() {
    delete lm_;
    delete folder_;
    delete backend_;
  }
  static LmSessionOptions request(std::vector<int32_t> text, bool bistream = false) {
    LmSessionOptions o;
    o.prompt_text = {11, 12, 13, 14};
    o.prompt_speech = {100, 2000, 300, 4000, 50, 6000};
    o.text = std::move(text);
    o.bistream = bistream;
    o.sampling.seed = 5;
    return o;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static SpeechLm* lm_;
};
Backend* BeamModel::backend_ = nullptr;
ModelFolder* BeamModel::folder_ = nullptr;
SpeechLm* BeamModel::lm_ = nullptr;

// The unistream input a hypothesis's next id is read after.
std::vector<LmInput> inputs_before_next(const LmSessionOptions& o,
                                        std::span<const int32_t> tokens) {
  std::vector<LmInput> seq = {{LmInputKind::Sos, 0}};
  for (int32_t t : o.prompt_text) seq.push_back({LmInputKind::Text, t});
  for (int32_t t : o.text) seq.push_back({LmInputKind::Text, t});
  seq.push_back({LmInputKind::TaskId, 0});
  for (int32_t t : o.prompt_speech) seq.push_back({LmInputKind::Speech, t});
  for (int32_t t : tokens) seq.push_back({LmInputKind::Speech, t});
  return seq;
}

TEST_F(BeamModel, EveryHypothesisReadsTheLogitsItsOwnTokensGive) {
  LmRunnerOptions ro;
  ro.kv_block_size = 4;  // hypotheses share many blocks and copy partial ones
  ro.voice_prefixes = 0;
  LmRunner runner(*backend_, *lm_, ro);
  const LmSessionLimits limits = LmSessionLimits::of(*lm_);
  LmSessionOptions o = request({5, 6});
  o.keep_logp = true;
  LmDecoder d(limits, o, {4, 1.0});
  LmDecoder* one[] = {&d};
  double worst = 0, apart = 0;
  int64_t checked = 0;
  for (int step = 0; step < 100 && !d.finished(); ++step) {
    runner.step(one);
    const auto live = d.hypotheses();
    for (size_t i = 0; i < live.size(); ++i) {
      const LmSession& h = *live[i];
      ASSERT_FALSE(h.tokens().empty());
      // Its last id was chosen from last_logp(): the LM after every earlier token.
      const auto before = std::span(h.tokens()).first(h.tokens().size() - 1);
      const std::vector<double> ref =
          next_token_logp(*backend_, *lm_, inputs_before_next(o, before));
      ASSERT_EQ(ref.size(), h.last_logp().size());
      for (size_t k = 0; k < ref.size(); ++k)
        worst = std::max(worst, std::fabs(ref[k] - double(h.last_logp()[k])));
      ++checked;
      if (i > 0 && live[i - 1]->tokens().size() == h.tokens().size()) {
        const auto& other = live[i - 1]->last_logp();
        double diff = 0;
        for (size_t k = 0; k < other.size(); ++k)
          diff = std::max(diff, std::fabs(double(other[k]) - double(h.last_logp()[k])));
        apart = std::max(apart, diff);
      }
    }
  }
  ASSERT_TRUE(d.finished());
  ASSERT_NE(d.finish_reason(), LmFinish::Error) << d.error();
  EXPECT_GT(checked, 40);
  // float32 against a float64 softmax of the same float32 logits, with other sums.
  EXPECT_LT(worst, 2e-4);
  // Hypotheses with different histories do read different logits: the check can fail.
  EXPECT_GT(apart, 100 * 2e-4);
  EXPECT_EQ(d.committed_tokens(), int64_t(d.tokens().size()));
  EXPECT_EQ(runner.pool().free_blocks(), runner.pool().geometry().blocks);
  std::printf(
      "beam search: %lld hypothesis steps checked, worst |dlogp| %.2e, siblings differ "
      "by up to %.3f\n",
      static_cast<long long>(checked), worst, apart);
}

struct Decoded {
  std::vector<int32_t> tokens;
  LmFinish finish;
};

// Runs the decoders to the end through one runner; bistream ones get their text 3 ids a step.
std::vector<Decoded> decode(LmRunner& runner, std::vector<std::unique_ptr<LmDecoder>>& ds,
                            const std::vector<std::vector<int32_t>>& texts, int64_t* evicted,
                            int64_t* peak_blocks = nullptr) {
  std::vector<size_t> given(ds.size(), 0);
  std::vector<LmDecoder*> all;
  for (auto& d : ds) all.push_back(d.get());
  for (int step = 0; step < 2000; ++step) {
    bool live = false;
    for (size_t i = 0; i < ds.size(); ++i) {
      if (ds[i]->finished()) continue;
      live = true;
      if (texts[i].empty() || given[i] >= texts[i].size()) continue;
      const size_t n = std::min<size_t>(3, texts[i].size() - given[i]);
      ds[i]->push_text(std::span(texts[i]).subspan(given[i], n));
      given[i] += n;
      if (given[i] == texts[i].size()) ds[i]->end_text();
    }
    if (!live) break;
    const LmStepStats st = runner.step(all);
    if (evicted != nullptr) *evicted += st.evicted;
    if (peak_blocks != nullptr) {
      *peak_blocks =
          std::max(*peak_blocks, runner.pool().geometry().blocks - runner.pool().free_blocks());
    }
  }
  std::vector<Decoded> out;
  for (auto& d : ds) out.push_back({d->tokens(), d->finish_reason()});
  return out;
}

TEST_F(BeamModel, BeamsBatchedWithOtherStreamsOrEvictedDecodeAsAlone) {
  const LmSessionLimits limits = LmSessionLimits::of(*lm_);
  const std::vector<std::vector<int32_t>> texts = {{}, {}, {21, 22, 23, 24, 25, 26, 27}, {}};
  const auto make = [&] {
    std::vector<std::unique_ptr<LmDecoder>> ds;
    ds.push_back(std::make_unique<LmDecoder>(limits, request({5, 6}), BeamSearchOptions{3, 1.0}));
    ds.push_back(std::make_unique<LmDecoder>(limits, request({7, 8, 9})));  // sampled
    ds.push_back(std::make_unique<LmDecoder>(limits, request({}, true), BeamSearchOptions{2, 1.0}));
    ds.push_back(std::make_unique<LmDecoder>(limits, request({8}), BeamSearchOptions{5, 0.5}));
    return ds;
  };
  // Each alone, in a roomy pool.
  std::vector<Decoded> alone;
  int64_t largest = 0, sum = 0;
  {
    auto ds = make();
    for (size_t i = 0; i < ds.size(); ++i) {
      LmRunner runner(*backend_, *lm_, {256, 4, 0});
      std::vector<std::unique_ptr<LmDecoder>> one;
      one.push_back(std::move(ds[i]));
      int64_t peak = 0;
      alone.push_back(decode(runner, one, {texts[i]}, nullptr, &peak).front());
      largest = std::max(largest, peak);
      sum += peak;
      runner.drop_voice_prefixes();
      EXPECT_EQ(runner.pool().free_blocks(), runner.pool().geometry().blocks) << "decoder " << i;
    }
  }
  // Together in a pool too small for all of them at once: some are evicted and recompute.
  const int64_t blocks = largest + 5;  // the widest search forks 5 hypotheses
  std::printf("peak blocks alone: largest %lld, sum %lld\n", (long long)largest, (long long)sum);
  ASSERT_LT(blocks, sum) << "every stream would fit at once";
  auto ds = make();
  LmRunner small(*backend_, *lm_, {blocks, 4});
  int64_t evicted = 0;
  const std::vector<Decoded> together = decode(small, ds, texts, &evicted);
  EXPECT_GT(evicted, 0) << "the pool was not tight enough to test eviction";
  for (size_t i = 0; i < alone.size(); ++i) {
    ASSERT_NE(alone[i].finish, LmFinish::Error) << i << ": " << ds[i]->error();
    EXPECT_NE(together[i].finish, LmFinish::Error) << i << ": " << ds[i]->error();
    EXPECT_EQ(together[i].tokens, alone[i].tokens) << "decoder " << i;
    EXPECT_EQ(together[i].finish, alone[i].finish) << "decoder " << i;
    EXPECT_FALSE(alone[i].tokens.empty());
  }
  small.drop_voice_prefixes();
  EXPECT_EQ(small.pool().free_blocks(), small.pool().geometry().blocks);
}

}  // namespace
}  // namespace cosy
