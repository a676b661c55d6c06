// The flow against the official code's fixtures: the noise table and t schedule, the
// estimator's first step in isolation, the non-streaming call with every dumped
// intermediate, and the first streaming chunk (chunk masks, look-ahead context).
#include <gtest/gtest.h>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "model/flow.h"
#include "model/model_folder.h"

namespace cosy {
namespace {

using golden::channels_last;
using golden::floats;
using golden::near;

// Tolerances from the fixture README: 1e-4 on the encoder output and the step-0 estimator,
// 1e-3 on mel after 10 Euler steps.
constexpr double kEncoderTolerance = 1e-4;
constexpr double kMelTolerance = 1e-3;

std::vector<int32_t> ints(const std::string& name) {
  const Tensor t = golden::load(name);
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  const auto f = t.to_float_vector();
  for (size_t i = 0; i < f.size(); ++i) out[i] = static_cast<int32_t>(f[i]);
  return out;
}

// (B, C, T) → B blocks of [T, C], concatenated.
std::vector<float> batch_channels_last(const Tensor& t) {
  const int64_t b = t.dim(0), c = t.dim(1), n = t.dim(2);
  const auto all = t.to_float_vector();
  std::vector<float> out;
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<float> one(all.begin() + i * c * n, all.begin() + (i + 1) * c * n);
    const auto tr = transpose_2d(one, c, n);
    out.insert(out.end(), tr.begin(), tr.end());
  }
  return out;
}

class GoldenFlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.llm = opt.hift = false;
    folder_ = new ModelFolder(load_model_folder(golden::model_dir(), opt));
    flow_ = new FlowModel(*backend_, folder_->config.flow, folder_->flow);
  }
  static void TearDownTestSuite() {
    delete flow_;
    delete folder_;
    delete backend_;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static FlowModel* flow_;
};
Backend* GoldenFlow::backend_ = nullptr;
ModelFolder* GoldenFlow::folder_ = nullptr;
FlowModel* GoldenFlow::flow_ = nullptr;

TEST_F(GoldenFlow, CosineScheduleMatches) {
  if (!golden::has("flow_t_span.npy")) GTEST_SKIP();
  EXPECT_TRUE(near(FlowModel::cosine_t_span(10), floats("flow_t_span.npy"), 1e-7));
}

TEST_F(GoldenFlow, EstimatorStepZeroFromDumpedInputs) {
  if (!golden::has("flow_est0_in_x.npy")) GTEST_SKIP();
  const auto x = batch_channels_last(golden::load("flow_est0_in_x.npy"));
  const auto mu = batch_channels_last(golden::load("flow_est0_in_mu.npy"));
  const auto cond = batch_channels_last(golden::load("flow_est0_in_cond.npy"));
  const auto spks = floats("flow_est0_in_spks.npy");
  const auto t = floats("flow_est0_in_t.npy");
  const int64_t T = golden::load("flow_est0_in_x.npy").dim(2), bins = 80;
  Batch xs(2), mus(2), conds(2);
  std::vector<EstimatorInput> in(2);
  for (size_t b = 0; b < 2; ++b) {
    auto slice = [&](const std::vector<float>& v, Act& a) {
      a.resize(T, bins);
      std::copy_n(v.begin() + static_cast<int64_t>(b) * T * bins, T * bins, a.data.begin());
    };
    slice(x, xs[b]);
    slice(mu, mus[b]);
    slice(cond, conds[b]);
    in[b].x = &xs[b];
    in[b].mu = &mus[b];
    in[b].cond = &conds[b];
    in[b].spks = std::span<const float>(spks).subspan(b * bins, bins);
    in[b].t = t[b];
  }
  Batch out;
  flow_->estimator().estimate(in, out);
  std::vector<float> got = out[0].data;
  got.insert(got.end(), out[1].data.begin(), out[1].data.end());
  EXPECT_TRUE(near(got, batch_channels_last(golden::load("flow_est0_out.npy")), kEncoderTolerance));
}

struct Inputs {
  std::vector<int32_t> prompt_tokens, tokens;
  std::vector<float> prompt_feat, embedding;
};

Inputs inputs(const std::string& tokens_file) {
  return {ints("prompt_speech_tokens.npy"), ints(tokens_file), floats("prompt_feat.npy"),
          floats("spk_embedding.npy")};
}

FlowRequest request(const Inputs& in, std::vector<float>& mel, FlowTrace* trace, bool streaming,
                    bool finalize) {
  FlowRequest r;
  r.prompt_tokens = in.prompt_tokens;
  r.tokens = in.tokens;
  r.prompt_feat = in.prompt_feat;
  r.embedding = in.embedding;
  r.streaming = streaming;
  r.finalize = finalize;
  r.mel = &mel;
  r.trace = trace;
  return r;
}

TEST_F(GoldenFlow, NonStreamingMatchesEveryIntermediate) {
  if (!golden::has("flow_tokens.npy")) GTEST_SKIP();
  const Inputs in = inputs("flow_tokens.npy");
  std::vector<float> mel;
  FlowTrace trace;
  FlowRequest r = request(in, mel, &trace, false, true);
  flow_->infer({&r, 1});
  EXPECT_TRUE(near(trace.encoder.embedded, floats("flow_enc_in.npy"), 1e-6));
  EXPECT_TRUE(near(trace.encoder.out, floats("flow_enc_out.npy"), kEncoderTolerance));
  EXPECT_TRUE(near(trace.mu, channels_last(golden::load("flow_mu.npy")), kEncoderTolerance));
  EXPECT_TRUE(near(trace.spks, floats("flow_spks.npy"), 1e-6));
  EXPECT_TRUE(near(trace.cond, channels_last(golden::load("flow_cond.npy")), 0));
  EXPECT_TRUE(near(trace.noise, channels_last(golden::load("flow_noise.npy")), 0));
  EXPECT_TRUE(near(trace.est_t, floats("flow_est_t.npy"), 1e-7));
  EXPECT_TRUE(
      near(trace.est0_out, batch_channels_last(golden::load("flow_est0_out.npy")), kEncoderTolerance));
  EXPECT_TRUE(near(trace.mel_full, channels_last(golden::load("flow_mel_full.npy")), kMelTolerance));
  EXPECT_TRUE(near(mel, channels_last(golden::load("flow_mel.npy")), kMelTolerance));
}

TEST_F(GoldenFlow, FirstStreamingChunkMatchesEveryIntermediate) {
  if (!golden::has("flowc0_tokens.npy")) GTEST_SKIP();
  const Inputs in = inputs("flowc0_tokens.npy");
  std::vector<float> mel;
  FlowTrace trace;
  FlowRequest r = request(in, mel, &trace, true, false);
  flow_->infer({&r, 1});
  EXPECT_TRUE(near(trace.encoder.embedded, floats("flowc0_enc_in.npy"), 1e-6));
  EXPECT_TRUE(near(trace.encoder.out, floats("flowc0_enc_out.npy"), kEncoderTolerance));
  EXPECT_TRUE(near(trace.mu, channels_last(golden::load("flowc0_mu.npy")), kEncoderTolerance));
  const auto x0 = batch_channels_last(golden::load("flowc0_est0_in_x.npy"));
  EXPECT_TRUE(near(trace.noise, std::vector<float>(x0.begin(), x0.begin() + x0.size() / 2), 0));
  EXPECT_TRUE(
      near(trace.est0_out, batch_channels_last(golden::load("flowc0_est0_out.npy")), kEncoderTolerance));
  EXPECT_TRUE(near(mel, channels_last(golden::load("flowc0_mel.npy")), kMelTolerance));
}

}  // namespace
}  // namespace cosy
