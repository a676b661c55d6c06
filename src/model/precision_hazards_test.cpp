// The weight scans on crafted weights (each hazard present, then absent), and the spectral
// distance on signals whose distance is known.
#include "model/precision_hazards.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/model_writer.h"
#include "model/param_schema.h"
#include "model/spectral_distance.h"

namespace cosy {
namespace {

Tensor filled(std::vector<float> v) {
  Tensor t = Tensor::zeros(DType::F32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<float>()[i] = v[i];
  return t;
}

TEST(PrecisionHazards, SnakeAlphaBelowTheFp16ReciprocalIsFlagged) {
  StateDict hift;
  hift.add("resblocks.0.activations1.0.alpha", filled({1.0f, 0.5f}));
  EXPECT_FALSE(snake_alpha_hazard(hift).flagged);
  hift.add("resblocks.1.activations2.0.alpha", filled({0.3f, 1e-6f, 0.0f}));
  const PrecisionHazard h = snake_alpha_hazard(hift);
  EXPECT_TRUE(h.flagged);
  EXPECT_EQ(h.count, 2);
  EXPECT_EQ(h.worst, 0.0);
  EXPECT_EQ(h.where, "resblocks.1.activations2.0.alpha");
}

TEST(PrecisionHazards, WeightsBeyondOrBelowFp16AreCounted) {
  StateDict w;
  w.add("a.weight", filled({1.0f, -2.0f, 0.0f}));
  auto h = weight_hazards("flow", w);
  EXPECT_FALSE(h[0].flagged);
  EXPECT_FALSE(h[1].flagged);
  w.add("b.weight", filled({70000.0f, 1e-9f, 1.0f}));
  h = weight_hazards("flow", w);
  EXPECT_TRUE(h[0].flagged);
  EXPECT_EQ(h[0].where, "b.weight");
  EXPECT_DOUBLE_EQ(h[0].worst, 70000.0);
  EXPECT_TRUE(h[1].flagged);  // one in three of b's weights vanishes in fp16
  EXPECT_EQ(h[1].count, 1);
}

TEST(PrecisionHazards, TheAttentionLogitBoundGrowsWithTheProjections) {
  LlmConfig c = preset_config("tiny").llm;
  c.qwen.vocab_size = 300;
  const auto specs = llm_param_specs(c);
  StateDict llm;
  for (const ParamSpec& s : specs) {
    if (s.optional) continue;
    Tensor t = Tensor::zeros(DType::F32, s.shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.mutable_data<float>()[i] =
          s.name.ends_with("norm.weight") ? 1.0f : 0.01f * float(i % 7) - 0.03f;
    llm.add(s.name, t);
  }
  const PrecisionHazard small = attention_logit_hazard(c, llm);
  EXPECT_FALSE(small.flagged) << small.message;
  EXPECT_GT(small.worst, 0);
  // Scale layer 1's q projection by 1e6: its bound scales with it (the bias stays).
  Tensor& q = const_cast<Tensor&>(llm.at("llm.model.model.layers.1.self_attn.q_proj.weight"));
  for (int64_t i = 0; i < q.numel(); ++i) q.mutable_data<float>()[i] *= 1e6f;
  const PrecisionHazard big = attention_logit_hazard(c, llm);
  EXPECT_TRUE(big.flagged) << big.message;
  EXPECT_EQ(big.where, "layer 1");
  EXPECT_EQ(big.count, 1);
}

// White noise (every bin well above the 80 dB floor) at twice the amplitude: 20·log10 2 in
// every bin.
TEST(SpectralDistance, IdenticalIsZeroAndTwiceAsLoudIsSixDecibels) {
  std::vector<float> a(24000), b(24000);
  uint32_t state = 12345;
  for (size_t i = 0; i < a.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    a[i] = 0.25f * (float(state >> 8) / float(1 << 24) - 0.5f);
    b[i] = 2 * a[i];
  }
  EXPECT_NEAR(spectral_distance(a, a).log_magnitude_db, 0, 1e-9);
  EXPECT_NEAR(spectral_distance(b, a).log_magnitude_db, 20 * std::log10(2.0), 0.01);
  EXPECT_NEAR(spectral_distance(b, a).convergence, 1.0, 1e-6);
  EXPECT_TRUE(std::isinf(snr_db(a, a)));
  EXPECT_NEAR(snr_db(b, a), 0.0, 1e-4);  // the error is as loud as the signal
}

}  // namespace
}  // namespace cosy
