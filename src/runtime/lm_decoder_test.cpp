// Beam search on its own, with made-up log-probabilities (no model): which hypotheses it
// keeps, what it commits, how it ends, and the guard's bans on its candidates.
#include "runtime/lm_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "model/test_model_util.h"
#include "runtime/test_lm_limits.h"

namespace cosy {
namespace {

constexpr int32_t kEos = 50, kFill = 52;

LmSessionLimits limits() { return testing::toy_lm_limits(); }  // EOS 50, unused 51, fill 52

using Scorer = std::function<std::vector<float>(const std::vector<int32_t>& tokens)>;

// Log-probs with the given ids at the given values, everything else far below.
std::vector<float> logp(std::initializer_list<std::pair<int32_t, float>> ids) {
  std::vector<float> lp(53, -30.0f);
  for (auto [id, v] : ids) lp[size_t(id)] = v;
  return lp;
}

// Steps the decoder until it ends, feeding each hypothesis what `score` gives for its tokens.
// Returns the most hypotheses live at once.
size_t run(LmDecoder& d, const Scorer& score, std::vector<int64_t>* committed = nullptr) {
  size_t widest = 0;
  for (int step = 0; step < 200 && !d.finished(); ++step) {
    if (!d.ready()) break;
    std::vector<std::vector<float>> rows;
    for (const auto& h : d.hypotheses()) rows.push_back(score(h->tokens()));
    std::vector<std::span<const float>> spans(rows.begin(), rows.end());
    widest = std::max(widest, rows.size());
    d.advance(spans);
    if (committed != nullptr) committed->push_back(d.committed_tokens());
  }
  return widest;
}

LmSessionOptions unistream(std::vector<int32_t> text) {
  LmSessionOptions o;
  o.text = std::move(text);
  o.sampling.method = SamplingMethod::Greedy;
  return o;
}

// After [1], the only good continuation is poor (-2); after [2] (a little less likely than
// [1]) it is good. Greedy takes 1; two beams find 2, 3. EOS is likely once allowed.
std::vector<float> garden_path(const std::vector<int32_t>& t) {
  if (t.empty()) return logp({{1, -0.4f}, {2, -0.5f}});
  if (t.size() == 1) return t[0] == 1 ? logp({{4, -2.0f}, {5, -2.1f}}) : logp({{3, -0.1f}});
  return logp({{kEos, -0.01f}, {6, -1.0f}});
}

TEST(BeamSearch, FindsTheSequenceGreedyMisses) {
  LmDecoder greedy(limits(), unistream({9}));
  run(greedy, garden_path);
  EXPECT_EQ(greedy.tokens(), (std::vector<int32_t>{1, 4}));

  LmDecoder beams(limits(), unistream({9}), {2, 1.0});
  EXPECT_EQ(run(beams, garden_path), 2u);
  ASSERT_EQ(beams.finish_reason(), LmFinish::Eos) << beams.error();
  EXPECT_EQ(beams.tokens(), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(beams.committed_tokens(), 2);
  EXPECT_TRUE(beams.hypotheses().empty());  // every hypothesis's KV may go
}

TEST(BeamSearch, OneBeamIsTheSampler) {
  auto o = unistream({9, 8});
  o.sampling.method = SamplingMethod::Ras;
  o.sampling.seed = 7;
  LmDecoder one(limits(), o);
  LmSession alone(limits(), o);
  const Scorer flat = [](const std::vector<int32_t>& t) {
    std::vector<float> lp(53);
    for (size_t i = 0; i < lp.size(); ++i)
      lp[i] = -std::log(53.0f) + 0.01f * float((i * 7 + t.size()) % 13);
    return lp;
  };
  run(one, flat);
  while (!alone.finished()) alone.advance(flat(alone.tokens()));
  EXPECT_FALSE(one.beam_search());
  EXPECT_EQ(one.tokens(), alone.tokens());
  EXPECT_EQ(one.finish_reason(), alone.finish_reason());
}

TEST(BeamSearch, CommitsOnlyThePrefixEveryHypothesisShares) {
  // 7 is by far the likeliest start, then two continuations stay close for a while: no
  // more than [7] is certain until the search ends.
  const Scorer s = [](const std::vector<int32_t>& t) {
    if (t.empty()) return logp({{7, 0.0f}});
    if (t.size() < 5) return logp({{10, -0.5f}, {11, -0.6f}});
    return logp({{kEos, -0.01f}});
  };
  LmDecoder d(limits(), unistream({9, 9}), {3, 1.0});
  std::vector<int64_t> committed;
  run(d, s, &committed);
  ASSERT_EQ(d.finish_reason(), LmFinish::Eos) << d.error();
  EXPECT_EQ(d.tokens(), (std::vector<int32_t>{7, 10, 10, 10, 10}));
  ASSERT_GE(committed.size(), 4u);
  for (size_t i = 0; i + 1 < committed.size(); ++i) {
    // After step i the hypotheses hold i + 1 tokens; they disagree about the last ones.
    EXPECT_LT(committed[i], int64_t(i) + 1) << "step " << i;
    EXPECT_LE(committed[i], committed[i + 1]) << "step " << i;
  }
  EXPECT_GE(committed[1], 1);  // [7] at least, once a second token was chosen
  EXPECT_EQ(committed.back(), 5);
}

TEST(BeamSearch, TheLengthPenaltyDecidesBetweenShortAndLong) {
  // After [1] the LM may stop at once (a short, likely sentence) or go on with [2] through
  // four more tokens (a longer one whose per-token score is higher).
  const Scorer s = [](const std::vector<int32_t>& t) {
    if (t.empty()) return logp({{1, -0.1f}});
    if (t.size() == 1) return logp({{kEos, -1.0f}, {1, -1.1f}, {2, -1.2f}});
    if (t.size() < 5) return logp({{2, -0.05f}});
    return logp({{kEos, -0.01f}});
  };
  // min_len 0: a stop may come at any step.
  auto o = unistream({9});
  o.min_token_text_ratio = 0;
  LmDecoder plain(limits(), o, {2, 0.0});  // raw sums: the short one (-1.1 vs -1.36)
  run(plain, s);
  EXPECT_EQ(plain.tokens(), (std::vector<int32_t>{1}));
  LmDecoder per_token(limits(), o, {2, 1.0});  // per token: the long one
  run(per_token, s);
  EXPECT_EQ(per_token.tokens().size(), 5u);
}

TEST(BeamSearch, BistreamBeamsAskForTextTogetherAndFillOnlyWhereOfficial) {
  LmSessionLimits l = limits();
  l.mix_text = 2;
  l.mix_speech = 3;
  LmSessionOptions o;
  o.bistream = true;
  o.sampling.method = SamplingMethod::Greedy;
  // The sampler would take the fill whenever it is allowed; beams may not before its place.
  // Past 12 tokens, going on costs more than stopping.
  const Scorer s = [](const std::vector<int32_t>& t) {
    if (t.size() >= 12) return logp({{kFill, -0.01f}, {13, -3.0f}, {kEos, -0.05f}});
    return logp({{kFill, -0.01f}, {int32_t(10 + t.size() % 3), -0.5f}, {20, -0.7f}, {kEos, -0.2f}});
  };
  LmDecoder d(l, o, {3, 1.0});
  EXPECT_TRUE(d.waiting_for_text());
  d.push_text(std::vector<int32_t>{1, 2});
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(d.ready());
    // Three speech tokens per two text tokens, then the fill: every beam waits for text.
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(d.ready()) << "round " << round << " step " << i;
      std::vector<std::vector<float>> rows;
      for (const auto& h : d.hypotheses()) rows.push_back(s(h->tokens()));
      std::vector<std::span<const float>> spans(rows.begin(), rows.end());
      d.advance(spans);
    }
    EXPECT_TRUE(d.waiting_for_text()) << "round " << round;
    for (const auto& h : d.hypotheses()) {
      EXPECT_EQ(int64_t(h->tokens().size()), 3 * (round + 1));
      EXPECT_TRUE(h->waiting_for_text());
    }
    d.push_text(std::vector<int32_t>{3, 4});
  }
  d.end_text();
  run(d, s);
  ASSERT_EQ(d.finish_reason(), LmFinish::Eos) << d.error();
  EXPECT_EQ(d.tokens().size(), 12u);
  for (int32_t t : d.tokens()) EXPECT_LT(t, 50);
}

TEST(BeamSearch, TheGuardsMasksAreBansOnTheCandidates) {
  // Every hypothesis's best next id is 5, forever: a run the guard must break.
  const Scorer s = [](const std::vector<int32_t>& t) {
    if (t.size() >= 30) return logp({{kEos, -0.01f}});
    return logp({{5, -0.1f}, {6, -1.0f}, {7, -1.5f}, {8, -2.0f}});
  };
  auto o = unistream({9, 9});
  o.min_token_text_ratio = 15;
  LmDecoder off(limits(), o, {2, 1.0});
  run(off, s);
  EXPECT_EQ(longest_run(off.tokens()), 30);
  o.guard.enabled = true;
  o.guard.max_run = 4;
  LmDecoder on(limits(), o, {2, 1.0});
  run(on, s);
  ASSERT_EQ(on.finish_reason(), LmFinish::Eos) << on.error();
  EXPECT_EQ(on.tokens().size(), 30u);
  EXPECT_LE(longest_run(on.tokens()), 4);
  const QualityReport r = on.quality_report();
  EXPECT_GT(r.runs, 0);
  EXPECT_GT(r.masked, 0);
  EXPECT_EQ(r.rollbacks, 0);  // the search keeps alternatives; it never rolls back
}

TEST(BeamSearch, BadOptionsAndNonFiniteLogitsAreClearErrors) {
  using testing::error_of;
  EXPECT_NE(error_of([] {
              LmDecoder(limits(), unistream({9}), {0, 1.0});
            }).find("num_beams"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              LmDecoder(limits(), unistream({9}), {17, 1.0});
            }).find("num_beams"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              LmDecoder(limits(), unistream({9}), {2, -1.0});
            }).find("length_penalty"),
            std::string::npos);
  LmDecoder d(limits(), unistream({9}), {4, 1.0});
  run(d, garden_path);  // a few steps are fine
  LmDecoder bad(limits(), unistream({9}), {4, 1.0});
  std::vector<float> nan = logp({{1, -0.1f}});
  nan[3] = NAN;
  const std::vector<std::span<const float>> rows = {nan};
  EXPECT_NE(error_of([&] { bad.advance(rows); }).find("non-finite"), std::string::npos);
}

}  // namespace
}  // namespace cosy
