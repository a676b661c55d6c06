// CosyVoice3's flow (CausalMaskedDiffWithDiT) against the official code's fixtures: the
// pre-look-ahead layer, mu, the DiT's first call down to its blocks, and the mel, for the
// non-streaming call and for the first streaming chunk (chunk masks, look-ahead context).
#include <gtest/gtest.h>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "kernels/guarded_backend.h"
#include "model/dit/dit_flow.h"
#include "model/model_folder.h"

namespace cosy {
namespace {

using golden::near;

// One pass of the estimator (fixture README: LLM-like 1e-4 for single float32 passes), and
// the mel after 10 Euler steps with CFG (README: 1e-3).
constexpr double kPassTolerance = 1e-4;
constexpr double kMelTolerance = golden::kMelTolerance;

golden::FixtureSet set() { return golden::cosyvoice3_set(); }
std::vector<float> floats(const std::string& name) { return set().floats(name); }
std::vector<int32_t> ints(const std::string& name) { return set().ints(name); }
// (1, C, T) → [T, C]
std::vector<float> channels_last(const std::string& name) {
  return golden::channels_last(set().load(name));
}
// (B, C, T) → B blocks of [T, C]
std::vector<float> batch_channels_last(const std::string& name) {
  const Tensor t = set().load(name);
  const int64_t b = t.dim(0), ch = t.dim(1), len = t.dim(2);
  const std::vector<float> all = t.to_float_vector();
  std::vector<float> out;
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<float> one(all.begin() + i * ch * len, all.begin() + (i + 1) * ch * len);
    const std::vector<float> tr = transpose_2d(one, ch, len);
    out.insert(out.end(), tr.begin(), tr.end());
  }
  return out;
}
// Rows [b] of a (B, ...) fixture.
std::vector<float> item(const std::string& name, int64_t b) {
  const Tensor t = set().load(name);
  const std::vector<float> all = t.to_float_vector();
  const auto per = static_cast<int64_t>(all.size()) / t.dim(0);
  return {all.begin() + b * per, all.begin() + (b + 1) * per};
}

class GoldenCv3Flow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.llm = opt.hift = false;
    folder_ = new ModelFolder(load_model_folder(set().model_dir(), opt));
    flow_ = new DitFlowModel(*backend_, folder_->config.flow, folder_->flow);
  }
  static void TearDownTestSuite() {
    delete flow_;
    delete folder_;
    delete backend_;
  }
  struct Call {
    std::vector<int32_t> prompt, tokens;
    std::vector<float> prompt_feat, embedding, mel;
    DitFlowTrace trace;
  };
  static Call run(const std::string& tokens_name, bool streaming, bool finalize) {
    Call c;
    c.prompt = ints("prompt_speech_tokens.npy");
    c.tokens = ints(tokens_name);
    c.prompt_feat = floats("prompt_feat.npy");  // (1, T, 80): channels-last already
    c.embedding = floats("spk_embedding.npy");
    DitFlowRequest r;
    r.prompt_tokens = c.prompt;
    r.tokens = c.tokens;
    r.prompt_feat = c.prompt_feat;
    r.embedding = c.embedding;
    r.streaming = streaming;
    r.finalize = finalize;
    r.mel = &c.mel;
    r.trace = &c.trace;
    flow_->infer({&r, 1});
    return c;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static DitFlowModel* flow_;
};
Backend* GoldenCv3Flow::backend_ = nullptr;
ModelFolder* GoldenCv3Flow::folder_ = nullptr;
DitFlowModel* GoldenCv3Flow::flow_ = nullptr;

TEST_F(GoldenCv3Flow, NonStreamingMatchesEveryIntermediate) {
  const Call c = run("flow_tokens.npy", false, true);
  const DitFlowTrace& tr = c.trace;
  EXPECT_TRUE(near(tr.la_in, floats("flow_la_in.npy"), 0.0));
  EXPECT_TRUE(near(tr.la_out, floats("flow_la_out.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.mu, channels_last("flow_mu.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.spks, floats("flow_spks.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.cond, channels_last("flow_cond.npy"), 0.0));
  EXPECT_TRUE(near(tr.noise, channels_last("flow_noise.npy"), 0.0));
  EXPECT_TRUE(near(tr.est_t, floats("flow_est_t.npy"), 1e-7));
  for (int64_t half = 0; half < 2; ++half) {
    const DitTrace& d = tr.est0[half];
    EXPECT_TRUE(near(d.temb, item("flow_est0_temb.npy", half), kPassTolerance)) << half;
    EXPECT_TRUE(near(d.xproj, item("flow_est0_xproj.npy", half), kPassTolerance)) << half;
    EXPECT_TRUE(near(d.xemb, item("flow_est0_xemb.npy", half), kPassTolerance)) << half;
    EXPECT_TRUE(near(d.block0, item("flow_est0_block0.npy", half), kPassTolerance)) << half;
    EXPECT_TRUE(near(d.normout, item("flow_est0_normout.npy", half), kPassTolerance)) << half;
  }
  EXPECT_TRUE(near(tr.est0_out, batch_channels_last("flow_est0_out.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.mel_full, channels_last("flow_mel_full.npy"), kMelTolerance));
  EXPECT_TRUE(near(c.mel, channels_last("flow_mel.npy"), kMelTolerance));
}

// The first chunk of a stream: its last 3 tokens are look-ahead context, and attention is
// chunk-causal over static_chunk_size frames from the first prompt frame.
TEST_F(GoldenCv3Flow, FirstStreamingChunkMatches) {
  const Call c = run("flowc0_tokens.npy", true, false);
  const DitFlowTrace& tr = c.trace;
  EXPECT_TRUE(near(tr.la_in, floats("flowc0_la_in.npy"), 0.0));
  EXPECT_TRUE(near(tr.la_context, floats("flowc0_la_context.npy"), 0.0));
  EXPECT_TRUE(near(tr.la_out, floats("flowc0_la_out.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.mu, channels_last("flowc0_mu.npy"), kPassTolerance));
  EXPECT_TRUE(near(tr.est0_out, batch_channels_last("flowc0_est0_out.npy"), kPassTolerance));
  EXPECT_TRUE(near(c.mel, channels_last("flowc0_mel.npy"), kMelTolerance));
}

// The DiT flow touches backend memory only through primitives: on a backend whose memory
// the host cannot read it runs, and gives the CPU backend's mel bit for bit.
TEST_F(GoldenCv3Flow, GuardedBackendGivesTheSameMel) {
  auto guarded = create_guarded_backend(cpu::create_cpu_backend());
  const DitFlowModel flow(*guarded, folder_->config.flow, folder_->flow);
  const Call want = run("flowc0_tokens.npy", true, false);
  DitFlowRequest r;
  r.prompt_tokens = want.prompt;
  r.tokens = want.tokens;
  r.prompt_feat = want.prompt_feat;
  r.embedding = want.embedding;
  r.streaming = true;
  r.finalize = false;
  std::vector<float> mel;
  r.mel = &mel;
  flow.infer({&r, 1});
  EXPECT_EQ(mel, want.mel);
}

TEST_F(GoldenCv3Flow, BadRequestsAreClearErrors) {
  Call c;
  c.prompt = ints("prompt_speech_tokens.npy");
  c.tokens = {1, 2};
  c.prompt_feat = floats("prompt_feat.npy");
  c.embedding = floats("spk_embedding.npy");
  DitFlowRequest r;
  r.prompt_tokens = c.prompt;
  r.tokens = c.tokens;
  r.prompt_feat = c.prompt_feat;
  r.embedding = c.embedding;
  r.mel = &c.mel;
  r.finalize = false;  // two tokens cannot hold three of look-ahead
  EXPECT_THROW(flow_->infer({&r, 1}), Error);
  r.finalize = true;
  c.tokens = {static_cast<int32_t>(folder_->config.flow.vocab_size)};
  r.tokens = c.tokens;
  EXPECT_THROW(flow_->infer({&r, 1}), Error);
  c.tokens = {5};
  r.tokens = c.tokens;
  r.prompt_feat = std::span<const float>(c.prompt_feat)
                      .first(static_cast<size_t>(flow_->mel_bins()));  // 1 frame
  EXPECT_THROW(flow_->infer({&r, 1}), Error);
}

}  // namespace
}  // namespace cosy
