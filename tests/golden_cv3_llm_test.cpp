// CosyVoice3 against the official code's fixtures ($COSY_GOLDEN_CV3_DIR): the released
// folder layout loads as CosyVoice3 with every stage's tensors checked, and the speech LM
// (CosyVoice3LM) reproduces the input assembly of the zero-shot, cross-lingual and
// instruct shapes, the teacher-forced logits, greedy decoding with the official EOS guard
// (and the corrected one), the stop on any special id, bistream, and the silent-token cap.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "golden_lm_util.h"
#include "kernels/cpu_backend.h"
#include "model/flow/flow.h"
#include "model/hift/hift.h"
#include "model/model_folder.h"
#include "runtime/silent_tokens.h"

namespace cosy {
namespace {

using golden::kLogitTolerance;
using golden::near;

golden::FixtureSet set() { return golden::cosyvoice3_set(); }
std::vector<float> floats(const std::string& name) { return set().floats(name); }
std::vector<int32_t> ints(const std::string& name) { return set().ints(name); }

class GoldenCv3Llm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    LoadOptions opt;
    opt.flow = opt.hift = false;
    folder_ = new ModelFolder(load_model_folder(set().model_dir(), opt));
    lm_ = new SpeechLm(*backend_, folder_->config.llm, folder_->llm);
  }
  static void TearDownTestSuite() {
    delete lm_;
    delete folder_;
    delete backend_;
  }
  static LmSessionLimits limits() { return LmSessionLimits::of(*lm_); }
  static std::vector<float> embed(std::span<const LmInput> in) {
    return golden::embed(*backend_, *lm_, in);
  }
  // The zero-shot shape: the shared prompt, and `text`.
  static LmSessionOptions zero_shot(std::vector<int32_t> text) {
    return golden::greedy_options(ints("prompt_text_ids.npy"), ints("prompt_speech_tokens.npy"),
                                  std::move(text));
  }
  static LmSessionOptions cross_lingual() {
    return golden::greedy_options({}, {}, ints("llm_noprompt_text_ids.npy"));
  }
  static LmSessionOptions instruct() {
    return golden::greedy_options(ints("llm_instruct_prompt_text_ids.npy"), {},
                                  ints("llm_instruct_text_ids.npy"));
  }

  static Backend* backend_;
  static ModelFolder* folder_;
  static SpeechLm* lm_;
};
Backend* GoldenCv3Llm::backend_ = nullptr;
ModelFolder* GoldenCv3Llm::folder_ = nullptr;
SpeechLm* GoldenCv3Llm::lm_ = nullptr;

TEST(GoldenCv3Folder, LoadsAsCosyVoice3WithEveryStageChecked) {
  const ModelFolder m = load_model_folder(set().model_dir());
  m.wait_verified();
  EXPECT_EQ(model_folder_family(set().model_dir()), ModelFamily::CosyVoice3);
  EXPECT_EQ(m.config.family, ModelFamily::CosyVoice3);
  EXPECT_EQ(m.config.llm.decoder_vocab(), m.config.llm.speech_token_size + 200);
  EXPECT_FALSE(m.config.llm.decoder_bias());
  EXPECT_TRUE(m.config.hift.causal);
  // fmax: null is half the sampling rate (librosa's default).
  EXPECT_EQ(m.config.feat_extractor.fmax, m.config.feat_extractor.sampling_rate / 2.0);
  // Every tensor of the three checkpoints is one the configs describe, with its shape.
  EXPECT_EQ(m.llm.find("llm_embedding.weight"), nullptr);
  EXPECT_EQ(m.llm.at("speech_embedding.weight").dim(0), m.config.llm.decoder_vocab());
  EXPECT_NE(m.flow.find("decoder.estimator.transformer_blocks.0.attn_norm.linear.weight"), nullptr);
}

// CosyVoice2's stage classes refuse a CosyVoice3 folder by name, instead of failing on a
// missing tensor.
TEST(GoldenCv3Folder, CosyVoice2StagesRefuseItByName) {
  const ModelFolder m = load_model_folder(set().model_dir());
  auto backend = cpu::create_cpu_backend();
  try {
    FlowModel flow(*backend, m.config.flow, m.flow);
    FAIL() << "CosyVoice2's flow was built from a CosyVoice3 folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is CosyVoice3's"), std::string::npos) << e.what();
  }
  try {
    HiftVocoder hift(*backend, m.config.hift, m.hift);
    FAIL() << "CosyVoice2's vocoder was built from a CosyVoice3 folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is CosyVoice3's"), std::string::npos) << e.what();
  }
}

TEST_F(GoldenCv3Llm, InputAssemblyMatchesOfficialLmInputForEveryShape) {
  const LmSession zs(limits(), zero_shot(ints("text_ids.npy")));
  EXPECT_TRUE(near(embed(zs.pending()), floats("llm_lm_input.npy"), 0.0));
  const LmSession cl(limits(), cross_lingual());
  EXPECT_TRUE(near(embed(cl.pending()), floats("llm_noprompt_lm_input.npy"), 0.0));
  const LmSession in(limits(), instruct());
  EXPECT_TRUE(near(embed(in.pending()), floats("llm_instruct_lm_input.npy"), 0.0));
}

TEST_F(GoldenCv3Llm, TextWithoutEndOfPromptIsAClearError) {
  auto o = zero_shot(ints("text_ids.npy"));
  const int32_t eop = limits().end_of_prompt;
  ASSERT_GE(eop, 0);
  std::erase(o.prompt_text, eop);
  try {
    LmSession s(limits(), o);
    FAIL() << "accepted a CosyVoice3 request without <|endofprompt|>";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("endofprompt"), std::string::npos) << e.what();
  }
}

TEST_F(GoldenCv3Llm, TeacherForcedLogitsAndHiddenStates) {
  const auto rows = golden::teacher_forced(*backend_, *lm_, floats("llm_lm_input.npy"),
                                           ints("llm_tf_tokens.npy"));
  EXPECT_TRUE(near(rows.hidden, floats("llm_tf_hidden.npy"), kLogitTolerance));
  EXPECT_TRUE(near(rows.logits, floats("llm_tf_logits.npy"), kLogitTolerance));
}

// The official guard masks id 6561 (sos in CosyVoice3) below the minimum length and leaves
// EOS 6562 open: the fixture's greedy run stops by EOS before min_len, and so does ours.
TEST_F(GoldenCv3Llm, GreedyReproducesTheOfficialEosGuard) {
  const auto guard = floats("llm_greedy_guard.npy");  // [steps, 2]: scores[6561], scores[6562]
  const SpeechVocab v = lm_->vocab();
  LmSession s(limits(), zero_shot(ints("llm_greedy_text_ids.npy")));
  const auto tokens = golden::run_greedy(
      *backend_, *lm_, s, floats("llm_greedy_top2.npy"), [&](size_t step, const LmStepRule& r) {
        if (2 * step + 1 >= guard.size()) return;
        const bool masked_6561 = std::isinf(guard[2 * step]) && guard[2 * step] < 0;
        const bool masked_6562 = std::isinf(guard[2 * step + 1]) && guard[2 * step + 1] < 0;
        const auto banned = [&](int32_t id) {
          return std::find(r.banned.begin(), r.banned.end(), id) != r.banned.end();
        };
        EXPECT_EQ(banned(v.official_min_length_mask()), masked_6561) << "step " << step;
        EXPECT_EQ(banned(v.eos()), masked_6562) << "step " << step;
      });
  EXPECT_EQ(tokens, ints("llm_greedy_tokens.npy"));
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
}

// With the corrected guard the same request cannot stop before its minimum length; up to
// where the official run stopped, it chose the same tokens.
TEST_F(GoldenCv3Llm, CorrectedEosGuardHoldsTheMinimumLength) {
  const auto text = ints("llm_greedy_text_ids.npy");
  auto o = zero_shot(text);
  o.corrected_eos_guard = true;
  LmSession s(limits(), o);
  LmRunner runner(*backend_, *lm_);
  LmSession* one[] = {&s};
  while (!s.finished()) runner.step(one);
  const auto official = ints("llm_greedy_tokens.npy");
  const auto min_len = static_cast<size_t>(2 * text.size());
  ASSERT_LT(official.size(), min_len) << "this set's greedy case does not stop early";
  EXPECT_GE(s.tokens().size(), min_len);
  EXPECT_TRUE(std::equal(official.begin(), official.end(), s.tokens().begin()));
}

TEST_F(GoldenCv3Llm, GreedyCrossLingualAndInstructMatchExactly) {
  LmSession cl(limits(), cross_lingual());
  EXPECT_EQ(golden::run_greedy(*backend_, *lm_, cl, floats("llm_noprompt_greedy_top2.npy")),
            ints("llm_noprompt_greedy_tokens.npy"));
  LmSession in(limits(), instruct());
  EXPECT_EQ(golden::run_greedy(*backend_, *lm_, in, floats("llm_instruct_greedy_top2.npy")),
            ints("llm_instruct_greedy_tokens.npy"));
}

// Any id from 6561 on ends the utterance, unyielded, as EOS does.
TEST_F(GoldenCv3Llm, AnySpecialIdStopsLikeEos) {
  LmSession s(limits(), zero_shot(ints("text_ids.npy")));
  const std::vector<float> logp(static_cast<size_t>(lm_->vocab().size()), -8.0f);
  for (const int32_t id : ints("llm_stopid_forced.npy")) {
    ASSERT_FALSE(s.finished());
    s.advance(logp, id);
  }
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
  EXPECT_EQ(s.tokens(), ints("llm_stopid_tokens.npy"));
}

// CosyVoice3's bistream: sos and the instruction up to <|endofprompt|> first, then the
// transcript and the text interleaved 5:15 with the prompt speech, fill 6564.
TEST_F(GoldenCv3Llm, BistreamMatchesStepInputsAndTokens) {
  auto o = zero_shot({});
  o.bistream = true;
  LmSession s(limits(), o);
  const auto run = golden::run_bistream(*backend_, *lm_, s, ints("llm_bistream_text_ids.npy"));
  EXPECT_EQ(run.input_lens, ints("llm_bistream_step_input_len.npy"));
  EXPECT_TRUE(near(run.inputs, floats("llm_bistream_all_inputs.npy"), 0.0));
  EXPECT_EQ(s.tokens(), ints("llm_bistream_tokens.npy"));
  EXPECT_EQ(s.finish_reason(), LmFinish::Eos);
  // Each call's best log-prob and id of the unmasked distribution.
  const auto top2 = floats("llm_bistream_top2.npy");
  ASSERT_EQ(4 * run.logp.size(), top2.size());
  for (size_t i = 0; i < run.logp.size(); ++i) {
    const auto best = std::max_element(run.logp[i].begin(), run.logp[i].end());
    EXPECT_NEAR(*best, top2[4 * i], kLogitTolerance) << "call " << i;
    EXPECT_EQ(best - run.logp[i].begin(), static_cast<int64_t>(top2[4 * i + 2])) << "call " << i;
  }
}

TEST(GoldenCv3Silent, AtMostFiveSilentTokensInARowReachTheFlow) {
  SilentTokenCap cap(SilentTokenCap::cosyvoice3());
  std::vector<int32_t> kept;
  for (const int32_t t : ints("silent_llm_tokens.npy"))
    if (cap.keep(t)) kept.push_back(t);
  EXPECT_EQ(kept, ints("silent_kept_tokens.npy"));
}

}  // namespace
}  // namespace cosy
