// The quality guard's detectors on crafted token sequences and entropies, and the session's
// repairs on injected log-probabilities (no model): masking, rollback, the ratio band and
// non-finite logits.
#include "runtime/quality_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "model/test_model_util.h"
#include "runtime/lm_session.h"
#include "runtime/test_lm_limits.h"

namespace cosy {
namespace {

QualityGuardOptions on() {
  QualityGuardOptions g;
  g.enabled = true;
  return g;
}

bool forbids(const QualityMonitor& m, const std::vector<int32_t>& tokens, int32_t id,
             QualityDetector by) {
  for (const auto& f : m.forbidden_next(tokens)) {
    if (f.id == id) return f.by == by;
  }
  return false;
}

TEST(QualityGuard, RunsAreForbiddenAtTheirBoundAndNotBefore) {
  QualityGuardOptions g = on();
  g.max_run = 4;
  const QualityMonitor m(g);
  EXPECT_FALSE(forbids(m, {1, 2, 7, 7, 7}, 7, QualityDetector::Run));
  EXPECT_TRUE(forbids(m, {1, 2, 7, 7, 7, 7}, 7, QualityDetector::Run));
  EXPECT_TRUE(m.forbidden_next(std::vector<int32_t>{1, 2, 3, 4, 5, 6}).empty());
  EXPECT_EQ(longest_run(std::vector<int32_t>{1, 1, 2, 2, 2, 3}), 3);
  EXPECT_EQ(longest_run(std::vector<int32_t>{}), 0);
}

TEST(QualityGuard, LoopsAreForbiddenBeforeTheirKPlusFirstRepeat) {
  QualityGuardOptions g = on();
  g.loop_repeats = 3;
  const QualityMonitor m(g);
  // "5 6" three times, then "5": a 6 would make the fourth repeat.
  const std::vector<int32_t> three = {9, 5, 6, 5, 6, 5, 6, 5};
  EXPECT_TRUE(forbids(m, three, 6, QualityDetector::Loop));
  EXPECT_FALSE(forbids(m, {9, 5, 6, 5, 6, 5}, 6, QualityDetector::Loop));
  // Period 5, three times, then its first two again: the third id would repeat it a fourth.
  std::vector<int32_t> p5;
  for (int r = 0; r < 3; ++r) p5.insert(p5.end(), {1, 2, 3, 4, 8});
  p5.insert(p5.end(), {1, 2, 3, 4});
  EXPECT_TRUE(forbids(m, p5, 8, QualityDetector::Loop));
  // A period longer than loop_max_period is not a loop.
  g.loop_max_period = 4;
  EXPECT_FALSE(forbids(QualityMonitor(g), p5, 8, QualityDetector::Loop));
  // The same counting over a whole sequence.
  EXPECT_EQ(most_loop_repeats(three, 2, 12), 3);
  EXPECT_EQ(most_loop_repeats(p5, 2, 12), 3);
  EXPECT_EQ(most_loop_repeats(std::vector<int32_t>{4, 4, 4, 4, 4, 4}, 2, 12), 1);  // a run
  EXPECT_EQ(most_loop_repeats(std::vector<int32_t>{1, 2, 3, 4, 5}, 2, 12), 1);
}

TEST(QualityGuard, SilenceIsCappedOnlyForItsSet) {
  QualityGuardOptions g = on();
  g.silent_tokens = {0, 3};
  g.max_silent_run = 3;
  const QualityMonitor m(g);
  EXPECT_TRUE(forbids(m, {5, 0, 3, 0}, 3, QualityDetector::Silence));
  EXPECT_TRUE(forbids(m, {5, 0, 3, 0}, 0, QualityDetector::Silence));
  EXPECT_FALSE(forbids(m, {5, 0, 3}, 0, QualityDetector::Silence));
}

TEST(QualityGuard, BabbleIsAStretchAboveTheRunningLevel) {
  QualityGuardOptions g = on();
  g.entropy_window = 4;
  g.entropy_warmup = 8;
  QualityMonitor m(g);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(m.observe_entropy(1.5)) << i;
  EXPECT_FALSE(m.observe_entropy(4.0));  // one high token is not a stretch
  bool hit = false;
  for (int i = 0; i < 4 && !hit; ++i) hit = m.observe_entropy(4.0);
  EXPECT_TRUE(hit);
  EXPECT_DOUBLE_EQ(m.report().entropy_max, 4.0);
  // Below the absolute floor nothing is babble, however it compares with the level.
  QualityMonitor quiet(g);
  for (int i = 0; i < 20; ++i) quiet.observe_entropy(0.1);
  for (int i = 0; i < 8; ++i) EXPECT_FALSE(quiet.observe_entropy(1.0));
}

TEST(QualityGuard, BadConfigurationIsAClearError) {
  const auto error = [](auto change) {
    QualityGuardOptions g = on();
    change(g);
    return testing::error_of([&] { g.validate(); });
  };
  EXPECT_NE(error([](auto& g) { g.loop_repeats = 1; }).find("loop_repeats (K) must be >= 2"),
            std::string::npos);
  EXPECT_NE(error([](auto& g) { g.lookahead = -1; }).find("lookahead"), std::string::npos);
  EXPECT_NE(error([](auto& g) { g.entropy_window = 0; }).find("entropy_window"), std::string::npos);
  EXPECT_NE(error([](auto& g) { g.max_run = -3; }).find("max_run"), std::string::npos);
  EXPECT_NE(error([](auto& g) { g.max_regenerations = -1; }).find("max_regenerations"),
            std::string::npos);
  EXPECT_EQ(error([](auto&) {}), "");
  QualityGuardOptions g = on();
  g.silent_tokens = {6561};
  EXPECT_NE(testing::error_of([&] { g.check_vocabulary(6561); }).find("silent token 6561"),
            std::string::npos);
}

// The session with a made-up vocabulary of 50 speech ids.
LmSessionLimits limits() { return testing::toy_lm_limits(100000); }

// Log-probabilities that put almost everything on `id`.
std::vector<float> favour(int32_t id) {
  std::vector<float> lp(53, -20.0f);
  lp[size_t(id)] = -0.001f;
  // The stop ids: never, so the ratio limits end the segment.
  for (size_t stop : {50, 51, 52}) lp[stop] = -40.0f;
  return lp;
}

LmSessionOptions session(const QualityGuardOptions& g, uint64_t seed = 1) {
  LmSessionOptions o;
  o.text = {1, 2, 3, 4, 5};
  o.prompt_text = {9, 9};
  o.prompt_speech = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};  // 6 speech tokens per text token
  o.sampling.seed = seed;
  o.guard = g;
  return o;
}

// Runs a session to its end on logits that favour whatever `next` says after `tokens`.
template <typename Next>
std::vector<int32_t> decode(LmSession& s, Next next, std::vector<int64_t>* committed = nullptr) {
  std::vector<int32_t> seen;  // what was committed, in order: it may never change
  while (!s.finished()) {
    const auto& t = s.tokens();
    s.advance(favour(next(t)));
    const auto c = static_cast<size_t>(s.committed_tokens());
    EXPECT_LE(c, s.tokens().size());
    for (size_t i = 0; i < std::min(c, seen.size()); ++i) {
      EXPECT_EQ(s.tokens()[i], seen[i]) << "committed token " << i << " changed";
      if (s.tokens()[i] != seen[i]) return s.tokens();
    }
    for (size_t i = seen.size(); i < c; ++i) seen.push_back(s.tokens()[i]);
    if (committed != nullptr) committed->push_back(static_cast<int64_t>(c));
  }
  return s.tokens();
}

TEST(QualityGuardSession, OffDecodesTheRunOnOnMasksIt) {
  const auto same = [](const std::vector<int32_t>&) { return 11; };
  QualityGuardOptions off;
  LmSession plain(limits(), session(off));
  const auto t0 = decode(plain, same);
  EXPECT_EQ(longest_run(t0), static_cast<int64_t>(t0.size()));  // one sound, held throughout
  EXPECT_EQ(plain.quality_report().masked, 0);

  QualityGuardOptions g = on();
  g.max_run = 6;
  LmSession guarded(limits(), session(g));
  const auto t1 = decode(guarded, same);
  const QualityReport r = guarded.quality_report();
  EXPECT_LE(longest_run(t1), 6);
  EXPECT_GT(r.runs, 0);
  EXPECT_EQ(r.masked, r.runs);
  EXPECT_EQ(r.longest_run, longest_run(t1));
  EXPECT_GT(r.entropy_count, 0);
  EXPECT_EQ(r.tokens, static_cast<int64_t>(t1.size()));
}

TEST(QualityGuardSession, LoopsAreBrokenAndRepeatedMasksRollBackBehindTheCommittedPoint) {
  // The logits favour the id after the last one in a cycle of three.
  const auto cycle = [](const std::vector<int32_t>& t) {
    return t.empty() ? 20 : 20 + (t.back() - 20 + 1 + 3) % 3;
  };
  QualityGuardOptions g = on();
  g.loop_repeats = 2;
  g.rollback_after_masks = 1;  // every mask rolls back, while rollbacks last
  g.lookahead = 4;
  g.max_rollbacks = 3;
  LmSession s(limits(), session(g, 5));
  std::vector<int64_t> committed;
  const auto t = decode(s, cycle, &committed);
  const QualityReport r = s.quality_report();
  EXPECT_LE(most_loop_repeats(t, 2, 12), 2);
  EXPECT_GT(r.loops, 0);
  EXPECT_EQ(r.rollbacks, 3);
  EXPECT_EQ(r.regenerations, 1);
  EXPECT_GT(r.rolled_back_tokens, 0);
  // The committed count never goes back, and trails the LM by the look-ahead until the end.
  for (size_t i = 1; i < committed.size(); ++i) EXPECT_GE(committed[i], committed[i - 1]);
}

TEST(QualityGuardSession, ARollbackDropsThePositionsItTakesBack) {
  QualityGuardOptions g = on();
  g.max_run = 3;
  g.rollback_after_masks = 1;
  g.lookahead = 2;
  LmSession s(limits(), session(g));
  s.advance(favour(11));  // the prompt: 1 + 2 + 5 + 1 + 12 positions
  const int64_t prompt = s.fed_positions();
  EXPECT_EQ(prompt, 21);
  for (int i = 0; i < 3; ++i) s.advance(favour(11));  // the 4th 11 is masked
  ASSERT_EQ(s.quality_report().rollbacks, 1);
  // Four tokens were sampled; the masked fourth rolled the last two back.
  EXPECT_EQ(s.tokens(), (std::vector<int32_t>{11, 11}));
  EXPECT_EQ(s.fed_positions(), prompt + 1);  // token 2 is fed again next
  ASSERT_EQ(s.pending().size(), 1u);
  EXPECT_EQ(s.pending()[0], (LmInput{LmInputKind::Speech, 11}));
}

TEST(QualityGuardSession, TheRatioBandEndsASegmentTheOfficialBoundWouldLetRun) {
  const auto counting = [](const std::vector<int32_t>& t) {
    return static_cast<int32_t>(t.size() % 40);
  };
  LmSession plain(limits(), session(QualityGuardOptions{}));
  EXPECT_EQ(decode(plain, counting).size(), 100u);  // 20 × 5 text tokens
  QualityGuardOptions g = on();
  g.ratio_slack = 2;  // the voice says 6 per text token: the band is [3, 12]
  LmSession guarded(limits(), session(g));
  EXPECT_EQ(decode(guarded, counting).size(), 60u);
  EXPECT_EQ(guarded.quality_report().ended, 1);
  EXPECT_EQ(guarded.quality_report().ratio, 1);
  EXPECT_DOUBLE_EQ(guarded.quality_report().length_ratio(), 12.0);
}

TEST(QualityGuardSession, NonFiniteLogitsFailTheStreamWhateverTheGuard) {
  for (bool guard : {false, true}) {
    QualityGuardOptions g;
    g.enabled = guard;
    LmSession s(limits(), session(g));
    std::vector<float> lp = favour(3);
    lp[17] = std::numeric_limits<float>::quiet_NaN();
    const std::string error = testing::error_of([&] { s.advance(lp); });
    EXPECT_NE(error.find("non-finite logits"), std::string::npos) << error;
    EXPECT_EQ(s.quality_report().nonfinite, 1);
  }
}

TEST(QualityGuardSession, UnknownSilentIdsAreRefused) {
  QualityGuardOptions g = on();
  g.silent_tokens = {3, 50};
  const std::string error = testing::error_of([&] { LmSession s(limits(), session(g)); });
  EXPECT_NE(error.find("silent token 50"), std::string::npos) << error;
}

}  // namespace
}  // namespace cosy
