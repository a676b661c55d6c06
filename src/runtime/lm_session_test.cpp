// The session state machine on its own, with made-up log-probabilities (no model): what it
// feeds, when it waits for text, forced fill tokens, bans and limits.
#include "runtime/lm_session.h"

#include <gtest/gtest.h>

#include <vector>

#include "runtime/test_lm_limits.h"

namespace cosy {
namespace {

LmSessionLimits limits() { return testing::toy_lm_limits(); }  // EOS 50, unused 51, fill 52

// Log-probs where `best` wins, then `second`.
std::vector<float> favour(int32_t best, int32_t second = 7) {
  std::vector<float> lp(53, -20.0f);
  lp[size_t(best)] = -0.1f;
  lp[size_t(second)] = -1.0f;
  return lp;
}

LmSessionOptions greedy(std::vector<int32_t> text, bool bistream = false) {
  LmSessionOptions o;
  o.text = std::move(text);
  o.bistream = bistream;
  o.sampling.method = SamplingMethod::Greedy;
  return o;
}

std::vector<int32_t> range(int32_t from, int32_t n) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(from + i);
  return v;
}

TEST(LmSession, UnistreamFeedsPromptThenOneTokenAndBansEosBelowMin) {
  auto o = greedy({1, 2, 3});
  o.prompt_text = {9};
  o.prompt_speech = {40, 41};
  LmSession s(limits(), o);
  const std::vector<LmInput> want = {{LmInputKind::Sos, 0},     {LmInputKind::Text, 9},
                                     {LmInputKind::Text, 1},    {LmInputKind::Text, 2},
                                     {LmInputKind::Text, 3},    {LmInputKind::TaskId, 0},
                                     {LmInputKind::Speech, 40}, {LmInputKind::Speech, 41}};
  ASSERT_TRUE(s.ready());
  EXPECT_EQ(std::vector<LmInput>(s.pending().begin(), s.pending().end()), want);
  // min_len = 2 * 3: EOS is banned for six steps, so the runner-up is taken.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.advance(favour(50, 8 + i)), 8 + i);
  EXPECT_EQ(s.pending().size(), 1u);
  EXPECT_EQ(s.pending()[0], (LmInput{LmInputKind::Speech, 13}));
  EXPECT_EQ(s.advance(favour(50)), std::nullopt);
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
  EXPECT_EQ(s.tokens(), range(8, 6));
}

TEST(LmSession, UnistreamStopsAtTwentyTimesTheText) {
  LmSession s(limits(), greedy({1, 2}));
  while (!s.finished()) s.advance(favour(4));
  EXPECT_EQ(s.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(s.tokens().size(), 40u);
}

// A forced rate: round(2.6 × 3 text tokens) = 8 speech tokens, EOS banned until then and
// the stream ended there, whatever the log-probabilities say.
TEST(LmSession, ForcedRateGivesTokensPerTextToken) {
  auto o = greedy({1, 2, 3});
  o.forced_tokens_per_text_token = 2.6;
  LmSession s(limits(), o);
  while (!s.finished()) s.advance(favour(50, 4));
  EXPECT_EQ(s.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(s.tokens().size(), 8u);
  // Bistream: counted over all the text once it has ended (7 tokens × 3 = 21).
  auto b = greedy({}, true);
  b.forced_tokens_per_text_token = 3;
  LmSession t(limits(), b);
  t.push_text(range(1, 7));
  t.end_text();
  for (int i = 0; i < 200 && !t.finished(); ++i) {
    if (t.ready()) t.advance(favour(50, 4));
  }
  EXPECT_EQ(t.finish_reason(), LmFinish::MaxLength);
  EXPECT_EQ(t.tokens().size(), 21u);
  o.forced_tokens_per_text_token = -1;
  EXPECT_THROW(LmSession(limits(), o), Error);
}

// Bistream without a prompt: wait for 5 text tokens, 15 speech tokens, a forced fill,
// the next 5 text tokens (the fill itself is not fed), and at the end the rest + task_id.
TEST(LmSession, BistreamInterleavesFiveTextFifteenSpeech) {
  LmSession s(limits(), greedy({}, true));
  EXPECT_TRUE(s.waiting_for_text());
  s.push_text(range(1, 4));
  EXPECT_TRUE(s.waiting_for_text());
  s.push_text(range(5, 1));
  ASSERT_TRUE(s.ready());
  EXPECT_EQ(s.pending().size(), 6u);  // sos + 5 text
  for (int i = 0; i < 15; ++i) EXPECT_EQ(s.advance(favour(50, 3)), 3) << "EOS is banned here";
  EXPECT_EQ(s.advance(favour(3)), std::nullopt);  // forced fill at 15
  EXPECT_TRUE(s.waiting_for_text());
  s.push_text(range(6, 7));  // 7 tokens at once: 5 are taken now, 2 stay
  ASSERT_TRUE(s.ready());
  EXPECT_EQ(s.pending().size(), 5u);
  EXPECT_EQ(s.pending()[0], (LmInput{LmInputKind::Text, 6}));
  for (int i = 0; i < 15; ++i) s.advance(favour(3));
  EXPECT_EQ(s.advance(favour(3)), std::nullopt);
  EXPECT_TRUE(s.waiting_for_text());
  s.end_text();
  ASSERT_TRUE(s.ready());
  // The official layout: the input fed at the fill step again, the 2 left, task_id.
  const std::vector<LmInput> want = {{LmInputKind::Speech, 3},
                                     {LmInputKind::Text, 11},
                                     {LmInputKind::Text, 12},
                                     {LmInputKind::TaskId, 0}};
  EXPECT_EQ(std::vector<LmInput>(s.pending().begin(), s.pending().end()), want);
  EXPECT_EQ(s.advance(favour(52, 4)), 4) << "the fill token is banned after the text";
  EXPECT_EQ(s.advance(favour(50)), std::nullopt);
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
  EXPECT_EQ(s.tokens().size(), 31u);  // 15 + 15 + 1
}

// Text pushed all at once gives the same inputs as text pushed token by token when asked.
TEST(LmSession, BulkTextFeedsLikeTokenByToken) {
  auto run = [](bool bulk) -> std::vector<std::vector<LmInput>> {
    auto o = greedy({}, true);
    o.prompt_text = range(60, 7);
    o.prompt_speech = range(20, 20);
    LmSession s(limits(), o);
    const auto text = range(1, 23);
    size_t next = 0;
    if (bulk) {
      s.push_text(text);
      s.end_text();
    }
    std::vector<std::vector<LmInput>> fed;
    int32_t tok = 0;
    while (!s.finished()) {
      if (s.waiting_for_text()) {
        EXPECT_FALSE(bulk);
        if (bulk) return {};
        if (next < text.size()) {
          s.push_text({&text[next++], 1});
        } else {
          s.end_text();
        }
        continue;
      }
      fed.emplace_back(s.pending().begin(), s.pending().end());
      s.advance(fed.size() > 80 ? favour(50) : favour(tok++ % 40));
    }
    return fed;
  };
  const auto a = run(false), b = run(true);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.front().size(), 31u);  // sos + 5+15 + 5+5, as the official fixture
  EXPECT_EQ(a, b);
}

TEST(LmSession, BadRequestsAreClearErrors) {
  EXPECT_THROW(LmSession(limits(), greedy({})), std::exception);        // empty text
  EXPECT_THROW(LmSession(limits(), greedy({1, 100})), std::exception);  // beyond the vocab
  auto o = greedy({1});
  o.prompt_speech = {50};  // EOS is not a speech token
  EXPECT_THROW(LmSession(limits(), o), std::exception);
  o = greedy({1});
  o.prompt_speech = std::vector<int32_t>(2000, 1);  // longer than the context
  EXPECT_THROW(LmSession(limits(), o), std::exception);
  LmSession uni(limits(), greedy({1}));
  EXPECT_THROW(uni.push_text(range(1, 1)), std::exception);
  EXPECT_THROW(uni.advance(std::vector<float>(10, 0.0f)), std::exception);  // wrong width
  LmSession bi(limits(), greedy({}, true));
  EXPECT_THROW(bi.push_text(std::vector<int32_t>{-1}), std::exception);
  EXPECT_THROW(bi.advance(favour(1)), std::exception);  // nothing pending
  bi.end_text();
  EXPECT_THROW(bi.push_text(range(1, 1)), std::exception);
}

TEST(LmSession, CancelEndsTheStream) {
  LmSession s(limits(), greedy({1, 2}));
  s.advance(favour(3));
  s.cancel();
  EXPECT_TRUE(s.finished());
  EXPECT_FALSE(s.ready());
  EXPECT_EQ(s.finish_reason(), LmFinish::Cancelled);
}

}  // namespace
}  // namespace cosy
