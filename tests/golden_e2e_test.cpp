// The whole offline pipeline against the official CosyVoice2Model.tts fixture (zero-shot,
// greedy LM, torch.manual_seed(300) before HiFT): text ids and the prompt in, speech
// tokens, mel and waveform out, through the public Synthesizer API.
#include <gtest/gtest.h>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "runtime/synthesizer.h"

namespace cosy {
namespace {

using golden::channels_last;
using golden::floats;
using golden::ints;
using golden::near;

TEST(GoldenE2e, TextAndPromptToTokensMelAndWaveform) {
  if (!golden::has("e2e_text_ids.npy")) GTEST_SKIP() << "no end-to-end case in this fixture set";
  auto backend = cpu::create_cpu_backend();
  LoadOptions opt;
  opt.voices = false;
  const ModelFolder folder = load_model_folder(golden::model_dir(), opt);
  const Synthesizer synth(*backend, folder);
  VoicePrompt voice;
  voice.text = ints("prompt_text_ids.npy");
  voice.speech = ints("prompt_speech_tokens.npy");
  voice.feat = floats("prompt_feat.npy");
  voice.embedding = floats("spk_embedding.npy");
  const auto text = ints("e2e_text_ids.npy");
  SynthesisRequest r;
  r.text = text;
  r.voice = &voice;
  r.sampling.method = SamplingMethod::Greedy;
  r.vocoder_seed = 300;
  const Synthesis out = synth.synthesize(r);
  EXPECT_EQ(out.tokens, ints("e2e_tokens.npy"));
  EXPECT_TRUE(near(out.mel, channels_last(golden::load("e2e_mel.npy")), 1e-3));
  // From the seed alone the waveform is held to 1e-2 (see golden_hift_test.cpp).
  EXPECT_TRUE(near(out.speech, floats("e2e_speech.npy"), 1e-2));
}

TEST(GoldenE2e, BadRequestsAreClearErrors) {
  auto backend = cpu::create_cpu_backend();
  LoadOptions opt;
  opt.voices = false;
  const ModelFolder folder = load_model_folder(golden::model_dir(), opt);
  const Synthesizer synth(*backend, folder);
  const std::vector<int32_t> text = {1, 2, 3};
  SynthesisRequest r;
  r.text = text;
  EXPECT_THROW(synth.synthesize(r), Error);  // no voice
  VoicePrompt voice;
  voice.speech = ints("prompt_speech_tokens.npy");
  voice.feat = floats("prompt_feat.npy");
  voice.feat.resize(voice.feat.size() -
                    static_cast<size_t>(synth.flow().mel_bins()));  // a frame short
  voice.embedding = floats("spk_embedding.npy");
  r.voice = &voice;
  EXPECT_THROW(synth.synthesize(r), Error);
  voice.feat = floats("prompt_feat.npy");
  const std::vector<int32_t> empty;
  r.text = empty;
  EXPECT_THROW(synth.synthesize(r), Error);
  Voice sft;
  sft.id = "sft";
  EXPECT_THROW(VoicePrompt::from_voice(sft), Error);
}

}  // namespace
}  // namespace cosy
