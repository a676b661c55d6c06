// The whole pipeline against the official CosyVoice2Model.tts fixtures, through the public
// Engine / SynthesisStream API:
//  - e2e_*: zero-shot, greedy LM, torch.manual_seed(300) before HiFT, stream=False: text
//    ids and the prompt in; speech tokens, mel and waveform out;
//  - stream*: speech tokens given as source_speech_token (the vc path), stream=True, the
//    generator reseeded with 200 + k before the k-th vocoder call: chunk by chunk.
#include <gtest/gtest.h>

#include <mutex>

#include "golden_util.h"
#include "kernels/cpu_backend.h"
#include "kernels/guarded_backend.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "runtime/lm_runner.h"
#include "runtime/lm_session.h"
#include "runtime/stages/cosyvoice2_stages.h"
#include "waveform_fidelity.h"

namespace cosy {
namespace {

using golden::channels_last;
using golden::f0_drift_envelope;
using golden::floats;
using golden::ints;
using golden::kMelTolerance;
using golden::near;
using golden::sounds_near;

std::shared_ptr<const VoicePrompt> fixture_voice() {
  auto voice = std::make_shared<VoicePrompt>();
  voice->text = ints("prompt_text_ids.npy");
  voice->speech = ints("prompt_speech_tokens.npy");
  voice->lm_speech = voice->speech;
  voice->feat = floats("prompt_feat.npy");
  voice->embedding = floats("spk_embedding.npy");
  return voice;
}

struct Collected {
  std::mutex mutex;
  std::vector<std::vector<float>> chunks, mels;
  std::vector<float> speech;
  int lasts = 0;
  AudioCallback callback() {
    return [this](const AudioChunk& c) {
      std::lock_guard lock(mutex);
      chunks.emplace_back(c.samples.begin(), c.samples.end());
      mels.emplace_back(c.mel.begin(), c.mel.end());
      speech.insert(speech.end(), c.samples.begin(), c.samples.end());
      lasts += c.last ? 1 : 0;
      return true;
    };
  }
};

// Every case runs on the CPU backend and on the guarded one, whose memory the host cannot
// touch: the same results there show that model and runtime code reach backend memory only
// through the interface, as a device backend requires.
class GoldenE2e : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    LoadOptions opt;
    opt.voices = false;
    folder_ = new ModelFolder(load_model_folder(golden::model_dir(), opt));
  }
  static void TearDownTestSuite() {
    delete folder_;
    folder_ = nullptr;
  }
  void SetUp() override {
    backend_ =
        GetParam() ? create_guarded_backend(cpu::create_cpu_backend()) : cpu::create_cpu_backend();
    engine_ = std::make_unique<Engine>(*backend_, *folder_);
  }
  void TearDown() override {
    engine_.reset();
    backend_.reset();
  }
  // The engine's CosyVoice2 vocoder, for the F0 drift envelopes.
  const HiftVocoder& hift() const {
    return dynamic_cast<const Cv2VocoderStage&>(engine_->vocoder()).model();
  }
  static ModelFolder* folder_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Engine> engine_;
};
ModelFolder* GoldenE2e::folder_ = nullptr;

// The modes are views of one voice that differ in what the LM sees: cross-lingual gives
// the official no-prompt LM run; instruct2 gives the LM the instruction as prompt text and
// no prompt speech. Both keep the voice's flow prompt.
TEST_P(GoldenE2e, CrossLingualAndInstructChangeOnlyTheLmPrompt) {
  if (!golden::has("llm_noprompt_text_ids.npy")) GTEST_SKIP() << "no no-prompt LM case in this set";
  const auto voice = fixture_voice();
  auto run = [&](std::shared_ptr<const VoicePrompt> v, const std::vector<int32_t>& text) {
    StreamOptions o;
    o.voice = std::move(v);
    o.streaming = false;
    o.sampling.method = SamplingMethod::Greedy;
    auto stream = engine_->open(o, [](const AudioChunk&) { return true; });
    stream->push_text_ids(text);
    stream->finish_input();
    return stream->wait();
  };
  const auto text = ints("llm_noprompt_text_ids.npy");
  const StreamResult cross = run(cross_lingual(voice), text);
  ASSERT_EQ(cross.status, StreamStatus::Done) << cross.error;
  EXPECT_EQ(cross.speech_tokens, ints("llm_noprompt_greedy_tokens.npy"));
  const StreamResult zero = run(voice, text);
  EXPECT_NE(zero.speech_tokens, cross.speech_tokens);
  // instruct2 with the transcript's ids as the "instruction": the zero-shot LM input minus
  // the prompt speech, which the LM run alone reproduces.
  const StreamResult inst = run(instruct2(voice, voice->text), text);
  ASSERT_EQ(inst.status, StreamStatus::Done) << inst.error;
  LmSessionOptions lo;
  lo.prompt_text = voice->text;
  lo.text = text;
  lo.sampling.method = SamplingMethod::Greedy;
  LmSession alone(LmSessionLimits::of(engine_->lm()), lo);
  LmRunner runner(*backend_, engine_->lm());
  LmSession* one[] = {&alone};
  while (!alone.finished()) runner.step(one);
  EXPECT_EQ(inst.speech_tokens, alone.tokens());
  // An SFT voice (an embedding alone) has no prompt speech to keep.
  auto sft = std::make_shared<VoicePrompt>();
  sft->embedding = voice->embedding;
  EXPECT_THROW(instruct2(sft, voice->text), Error);
  const StreamResult sft_run = run(sft, text);
  ASSERT_EQ(sft_run.status, StreamStatus::Done) << sft_run.error;
  EXPECT_EQ(sft_run.speech_tokens, cross.speech_tokens);  // the LM sees the same as cross-lingual
}

TEST_P(GoldenE2e, TextAndPromptToTokensMelAndWaveform) {
  if (!golden::has("e2e_text_ids.npy")) GTEST_SKIP() << "no end-to-end case in this fixture set";
  StreamOptions o;
  o.voice = fixture_voice();
  o.streaming = false;
  o.sampling.method = SamplingMethod::Greedy;
  o.vocoder_seed = 300;
  Collected got;
  auto stream = engine_->open(o, got.callback());
  stream->push_text_ids(ints("e2e_text_ids.npy"));
  stream->finish_input();
  const StreamResult r = stream->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  EXPECT_EQ(r.speech_tokens, ints("e2e_tokens.npy"));
  EXPECT_EQ(r.segments, 1);
  EXPECT_EQ(got.lasts, 1);
  ASSERT_EQ(got.chunks.size(), 1u);  // stream=False: one chunk
  EXPECT_TRUE(near(got.mels[0], channels_last(golden::load("e2e_mel.npy")), kMelTolerance));
  // From the seeds alone: held to the F0 drift envelope (waveform_fidelity.h).
  const Tensor mel_t = golden::load("e2e_mel.npy");
  EXPECT_TRUE(sounds_near(got.speech, floats("e2e_speech.npy"),
                          f0_drift_envelope(hift(), channels_last(mel_t), mel_t.dim(2), 300)));
  EXPECT_EQ(r.samples, int64_t(got.speech.size()));
  EXPECT_GT(r.first_chunk_s, 0);
}

TEST_P(GoldenE2e, StreamingTokensChunkByChunk) {
  if (!golden::has("stream_schedule.npy")) GTEST_SKIP() << "no streaming case in this fixture set";
  const Tensor schedule = golden::load("stream_schedule.npy");
  const auto sched = schedule.to_int_vector();
  const int64_t chunks = schedule.dim(0), cols = schedule.dim(1);
  for (const bool incremental : {true, false}) {
    StreamOptions o;
    o.voice = fixture_voice();
    o.input = StreamInput::SpeechTokens;
    o.flow.incremental = incremental;
    o.vocoder_seed = static_cast<uint64_t>(sched[6]);  // 200: the seed before chunk 0
    o.reseed_vocoder_per_chunk = true;
    Collected got;
    auto stream = engine_->open(o, got.callback());
    // Tokens arrive a few at a time, as from an LM.
    const auto tokens = ints("stream_tokens.npy");
    for (size_t i = 0; i < tokens.size(); i += 7) {
      stream->push_speech_tokens(
          std::span(tokens).subspan(i, std::min<size_t>(7, tokens.size() - i)));
    }
    stream->finish_input();
    const StreamResult r = stream->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    EXPECT_EQ(r.speech_tokens, tokens);
    ASSERT_EQ(int64_t(got.chunks.size()), chunks) << "incremental " << incremental;
    int64_t emitted_frames = 0;
    SpectralDistance envelope;
    for (int64_t k = 0; k < chunks; ++k) {
      const std::string p = "stream" + std::to_string(k) + "_";
      EXPECT_EQ(int64_t(got.chunks[size_t(k)].size()), sched[size_t(k * cols + 5)]) << k;
      // The F0 drift envelope of the chunk's vocoder call (its mel and seed).
      const Tensor hift_mel = golden::load(p + "hift_mel.npy");
      const auto chunk_envelope = f0_drift_envelope(
          hift(), channels_last(hift_mel), hift_mel.dim(2), uint64_t(sched[size_t(k * cols + 6)]));
      envelope = golden::widest(envelope, chunk_envelope);
      EXPECT_TRUE(sounds_near(got.chunks[size_t(k)], floats(p + "out.npy"), chunk_envelope))
          << "chunk " << k << " incremental " << incremental;
      // The mel each chunk was made from: the flow's new frames.
      const auto full = channels_last(golden::load(p + "flow_mel.npy"));
      const std::vector<float> fresh(full.begin() + emitted_frames, full.end());
      EXPECT_TRUE(near(got.mels[size_t(k)], fresh, kMelTolerance)) << "chunk " << k;
      emitted_frames = int64_t(full.size());
    }
    if (golden::has("stream_speech.npy")) {
      EXPECT_TRUE(sounds_near(got.speech, floats("stream_speech.npy"), envelope));
    }
    EXPECT_EQ(got.lasts, 1);
  }
}

TEST_P(GoldenE2e, BadRequestsAreClearErrors) {
  StreamOptions o;
  EXPECT_THROW(engine_->open(o), Error);  // no voice
  auto voice = std::make_shared<VoicePrompt>(*fixture_voice());
  voice->feat.resize(voice->feat.size() - size_t(engine_->flow().mel_bins()));  // a frame short
  o.voice = voice;
  EXPECT_THROW(engine_->open(o), Error);
  o.voice = fixture_voice();
  auto stream = engine_->open(o);
  EXPECT_THROW(stream->finish_input(), Error);      // no text at all
  EXPECT_THROW(stream->push_text("hello"), Error);  // this folder has no tokenizer
  EXPECT_THROW(stream->push_speech_tokens(std::vector<int32_t>{1}), Error);  // wrong kind
  const std::vector<int32_t> too_big = {int32_t(folder_->config.llm.qwen.vocab_size)};
  EXPECT_THROW(stream->push_text_ids(too_big), Error);
  stream->cancel();
  EXPECT_EQ(stream->wait().status, StreamStatus::Cancelled);
  Voice sft;
  sft.id = "sft";
  EXPECT_THROW(VoicePrompt::from_voice(sft), Error);
  EXPECT_THROW(engine_->voice("nobody"), Error);
}

// The guarded backend runs the CPU kernels on the same values: its audio is the CPU
// backend's, bit for bit, streaming included.
TEST(GoldenE2eGuarded, SameAudioAsTheCpuBackend) {
  if (!golden::has("stream_schedule.npy")) GTEST_SKIP() << "no streaming case in this fixture set";
  LoadOptions opt;
  opt.voices = false;
  const ModelFolder folder = load_model_folder(golden::model_dir(), opt);
  auto run = [&](Backend& backend) {
    Engine engine(backend, folder);
    StreamOptions o;
    o.voice = fixture_voice();
    o.input = StreamInput::SpeechTokens;
    o.vocoder_seed = 200;
    Collected got;
    auto stream = engine.open(o, got.callback());
    stream->push_speech_tokens(ints("stream_tokens.npy"));
    stream->finish_input();
    EXPECT_EQ(stream->wait().status, StreamStatus::Done);
    return got.speech;
  };
  auto cpu_backend = cpu::create_cpu_backend();
  auto guarded = create_guarded_backend(cpu::create_cpu_backend());
  const auto want = run(*cpu_backend);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(run(*guarded), want);
}

INSTANTIATE_TEST_SUITE_P(Backends, GoldenE2e, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "guarded" : "cpu"; });

}  // namespace
}  // namespace cosy
