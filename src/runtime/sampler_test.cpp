#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace cosy {
namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  for (double v : p) out.push_back(static_cast<float>(std::log(v)));
  return out;
}

SamplingParams params(SamplingMethod m, uint64_t seed = 1) {
  SamplingParams p;
  p.method = m;
  p.seed = seed;
  return p;
}

TEST(Sampler, GreedyTakesTheBestUnbannedId) {
  TokenSampler s(params(SamplingMethod::Greedy));
  const auto lp = log_probs({0.1, 0.5, 0.3, 0.1});
  EXPECT_EQ(s.sample(lp, {}, {}), 1);
  const int32_t banned[] = {1};
  EXPECT_EQ(s.sample(lp, banned, {}), 2);
}

TEST(Sampler, TopKOneIsGreedyAndBannedIdsAreNeverDrawn) {
  auto p = params(SamplingMethod::TopKTopP);
  p.top_k = 1;
  p.top_p = 1.0;
  TokenSampler s(p);
  const auto lp = log_probs({0.2, 0.1, 0.6, 0.1});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(lp, {}, {}), 2);
  p.top_k = 0;
  TokenSampler all(p);
  const int32_t banned[] = {2, 0};
  for (int i = 0; i < 200; ++i) {
    const int32_t t = all.sample(lp, banned, {});
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Sampler, StatsMeasureTheDistributionSampledFrom) {
  const auto lp = log_probs({0.5, 0.25, 0.125, 0.125});
  const double h = -(0.5 * std::log(0.5) + 0.25 * std::log(0.25) + 2 * 0.125 * std::log(0.125));
  for (SamplingMethod m : {SamplingMethod::Greedy, SamplingMethod::Ras, SamplingMethod::TopKTopP}) {
    TokenSampler s(params(m));
    TokenStats st;
    const int32_t id = s.sample(lp, {}, {}, &st);
    EXPECT_NEAR(st.entropy, h, 1e-5) << sampling_method_name(m);
    EXPECT_NEAR(st.top1, 0.5, 1e-6);
    EXPECT_NEAR(st.chosen, std::exp(lp[size_t(id)]), 1e-6);
  }
  // Temperature and banned ids change the distribution measured.
  auto p = params(SamplingMethod::TopKTopP);
  p.temperature = 0.5;
  TokenSampler cold(p);
  TokenStats st;
  const int32_t banned[] = {0};
  cold.sample(lp, banned, {}, &st);
  // (0.25, 0.125, 0.125)^2 normalised: (2/3, 1/6, 1/6).
  EXPECT_NEAR(st.top1, 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(st.entropy, -(2.0 / 3 * std::log(2.0 / 3) + 2.0 / 6 * std::log(1.0 / 6)), 1e-5);
  // Measuring draws nothing: the same seed gives the same ids with and without stats.
  TokenSampler a(params(SamplingMethod::Ras, 9)), b(params(SamplingMethod::Ras, 9));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(lp, {}, {}), b.sample(lp, {}, {}, &st));
}

TEST(Sampler, ResampleNeverDrawsAMaskedId) {
  const auto lp = log_probs({0.97, 0.01, 0.01, 0.01});
  for (SamplingMethod m : {SamplingMethod::Greedy, SamplingMethod::Ras}) {
    TokenSampler s(params(m));
    const int32_t masked[] = {0, 2};
    for (int i = 0; i < 100; ++i) {
      const int32_t t = s.resample(lp, masked);
      EXPECT_TRUE(t == 1 || t == 3) << t;
    }
  }
  // When the ids left hold no mass in float, the best of them is taken.
  std::vector<float> sharp = {0.0f, -200.0f, -300.0f};
  TokenSampler s(params(SamplingMethod::Ras));
  const int32_t masked[] = {0};
  EXPECT_EQ(s.resample(sharp, masked), 1);
}

// Draw frequencies follow the probabilities inside the nucleus, and nothing outside it
// is drawn: top_p 0.8 over {0.5, 0.25, 0.15, 0.1} keeps the first three.
TEST(Sampler, NucleusFrequenciesFollowTheKeptMass) {
  auto p = params(SamplingMethod::TopKTopP, 7);
  p.top_k = 0;
  p.top_p = 0.8;
  TokenSampler s(p);
  const auto lp = log_probs({0.5, 0.25, 0.15, 0.1});
  std::map<int32_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[s.sample(lp, {}, {})];
  EXPECT_EQ(count[3], 0);
  EXPECT_NEAR(count[0] / double(n), 0.5 / 0.9, 0.02);
  EXPECT_NEAR(count[1] / double(n), 0.25 / 0.9, 0.02);
  EXPECT_NEAR(count[2] / double(n), 0.15 / 0.9, 0.02);
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  const auto lp = log_probs({0.6, 0.4});
  auto frac_first = [&](double t) {
    auto p = params(SamplingMethod::TopKTopP, 3);
    p.top_k = 0;
    p.top_p = 1.0;
    p.temperature = t;
    TokenSampler s(p);
    int first = 0;
    for (int i = 0; i < 10000; ++i) first += s.sample(lp, {}, {}) == 0;
    return first / 10000.0;
  };
  EXPECT_GT(frac_first(0.25), 0.75);  // 0.6^4 / (0.6^4 + 0.4^4) = 0.835
  EXPECT_NEAR(frac_first(1.0), 0.6, 0.02);
  EXPECT_LT(frac_first(10.0), 0.56);
}

// RAS: a nucleus pick already in the window is redrawn from the full distribution, so an
// id outside the nucleus (never drawn otherwise) starts to appear.
TEST(Sampler, RasRedrawsRepeatsFromTheFullDistribution) {
  auto p = params(SamplingMethod::Ras, 11);
  p.top_k = 1;  // nucleus = {0}
  TokenSampler s(p);
  const auto lp = log_probs({0.7, 0.3});
  int outside = 0;
  for (int i = 0; i < 2000; ++i) outside += s.sample(lp, {}, {}) == 1;
  EXPECT_EQ(outside, 0) << "no history: the nucleus pick stands";
  const std::vector<int32_t> history = {0};
  for (int i = 0; i < 2000; ++i) outside += s.sample(lp, {}, history) == 1;
  EXPECT_NEAR(outside / 2000.0, 0.3, 0.04);
}

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferent) {
  const auto lp = log_probs({0.3, 0.3, 0.2, 0.2});
  auto draws = [&](uint64_t seed) {
    auto p = params(SamplingMethod::TopKTopP, seed);
    p.top_k = 0;
    p.top_p = 1.0;
    TokenSampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(lp, {}, {}));
    return out;
  };
  EXPECT_EQ(draws(5), draws(5));
  EXPECT_NE(draws(5), draws(6));
}

TEST(Sampler, BadParametersAreClearErrors) {
  auto p = params(SamplingMethod::TopKTopP);
  p.temperature = 0;
  EXPECT_THROW(TokenSampler{p}, std::exception);
  p = params(SamplingMethod::TopKTopP);
  p.top_p = 1.5;
  EXPECT_THROW(TokenSampler{p}, std::exception);
  EXPECT_THROW(parse_sampling_method("beam"), std::exception);
  TokenSampler s(params(SamplingMethod::Greedy));
  const auto lp = log_probs({1.0});
  const int32_t banned[] = {0};
  EXPECT_THROW(s.sample(lp, banned, {}), std::exception);
  EXPECT_NE(params(SamplingMethod::Ras).to_string().find("method=ras"), std::string::npos);
}

}  // namespace
}  // namespace cosy
