// CosyVoice3 end to end against the official code's fixtures: speech tokens → audio as
// CosyVoice3Model.tts schedules it when streaming (chunk by chunk: the flow's calls, the
// vocoder's, the samples each chunk yields) and offline, and text → tokens → audio with the
// greedy LM and the silent-token cap.
#include <gtest/gtest.h>

#include <memory>

#include "golden_lm_util.h"
#include "kernels/cpu_backend.h"
#include "model/dit/token2wav.h"
#include "model/model_folder.h"
#include "model/spectral_distance.h"
#include "runtime/engine.h"
#include "runtime/silent_tokens.h"
#include "waveform_fidelity.h"

namespace cosy {
namespace {

using golden::near;

constexpr double kMelTolerance = golden::kMelTolerance;  // README: 1e-3 after 10 Euler steps

golden::FixtureSet set() { return golden::cosyvoice3_set(); }
std::vector<float> floats(const std::string& name) { return set().floats(name); }
std::vector<int32_t> ints(const std::string& name) { return set().ints(name); }
std::vector<float> channels_last(const std::string& name) {
  return golden::channels_last(set().load(name));
}

// Audio made from our own mel is compared by how it sounds (waveform_fidelity.h): the flow's
// mel is within kMelTolerance of the official one (here within 3e-6), and the vocoder's sine
// source integrates the F0 it predicts from the mel into phases, so a mel difference far
// inside the tolerance still parts the samples by ~1e-3 over an utterance (given the official
// mel, the vocoder meets 1e-4 sample by sample: GoldenCv3Hift). The bound is the distance
// between our vocoder's output for the mel and for the mel raised by kMelTolerance
// everywhere: the largest consistent F0 shift a mel within the tolerance can make.
SpectralDistance mel_tolerance_envelope(const CausalHiftVocoder& hift, std::vector<float> mel,
                                        bool finalize) {
  auto vocode = [&](const std::vector<float>& m) {
    std::vector<float> speech;
    CausalHiftRequest r;
    r.mel = m;
    r.frames = static_cast<int64_t>(m.size()) / hift.config().in_channels;
    r.finalize = finalize;
    r.speech = &speech;
    hift.vocode({&r, 1});
    return speech;
  };
  const std::vector<float> ours = vocode(mel);
  for (float& v : mel) v += static_cast<float>(kMelTolerance);
  return spectral_distance(vocode(mel), ours);
}

class GoldenCv3E2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend().release();
    folder_ = new ModelFolder(load_model_folder(set().model_dir()));
    const ModelConfig& c = folder_->config;
    flow_ = new DitFlowModel(*backend_, c.flow, folder_->flow);
    hift_ = new CausalHiftVocoder(*backend_, c.hift, folder_->hift, causal_hift_noise_offset(c));
    prompt_ = new std::vector<int32_t>(ints("prompt_speech_tokens.npy"));
    prompt_feat_ = new std::vector<float>(floats("prompt_feat.npy"));
    embedding_ = new std::vector<float>(floats("spk_embedding.npy"));
  }
  static void TearDownTestSuite() {
    delete embedding_;
    delete prompt_feat_;
    delete prompt_;
    delete hift_;
    delete flow_;
    delete folder_;
    delete backend_;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
  static DitFlowModel* flow_;
  static CausalHiftVocoder* hift_;
  static std::vector<int32_t>* prompt_;
  static std::vector<float>*prompt_feat_, *embedding_;
};
Backend* GoldenCv3E2e::backend_ = nullptr;
ModelFolder* GoldenCv3E2e::folder_ = nullptr;
DitFlowModel* GoldenCv3E2e::flow_ = nullptr;
CausalHiftVocoder* GoldenCv3E2e::hift_ = nullptr;
std::vector<int32_t>* GoldenCv3E2e::prompt_ = nullptr;
std::vector<float>* GoldenCv3E2e::prompt_feat_ = nullptr;
std::vector<float>* GoldenCv3E2e::embedding_ = nullptr;

// Both ways of running the flow: recomputing every chunk (the official code) and
// incremental (each chunk computes its own frames from the stream's cached keys).
class GoldenCv3Stream : public GoldenCv3E2e, public ::testing::WithParamInterface<bool> {};

TEST_P(GoldenCv3Stream, FollowsTheOfficialScheduleChunkByChunk) {
  const auto tokens = ints("stream_tokens.npy");
  Cv3StreamOptions o;
  o.incremental = GetParam();
  Cv3Token2Wav s(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_, o);
  s.push_tokens(tokens);
  s.finish();
  const auto schedule = ints("stream_schedule.npy");  // [chunks, 7]
  std::vector<float> all;
  int64_t sent = 0;
  size_t i = 0;
  for (; !s.done(); ++i) {
    ASSERT_TRUE(s.ready());
    const Cv3Chunk c = s.step();
    const std::string p = "stream" + std::to_string(i) + "_";
    ASSERT_TRUE(set().has(p + "out.npy")) << "more chunks than the official run";
    ASSERT_LE(7 * (i + 1), schedule.size());
    const int32_t* row = &schedule[7 * i];
    EXPECT_EQ(c.flow_tokens, row[0]) << i;
    EXPECT_EQ(c.final, row[1] == 1) << i;
    EXPECT_EQ(!c.final, row[2] == 1) << i;  // the streaming flag: chunk masks until the end
    EXPECT_EQ(c.hift_frames, row[3]) << i;
    EXPECT_EQ(c.final, row[4] == 1) << i;
    EXPECT_EQ(sent, row[5]) << i;
    EXPECT_EQ(static_cast<int64_t>(c.audio.size()), row[6]) << i;
    // What the flow computed: all of the official call's frames, or (incremental) those
    // from the stream's committed frames on.
    const auto want = channels_last(p + "flow_mel.npy");
    EXPECT_EQ(c.flow_first_frame == 0, !GetParam() || c.final || i == 0) << i;
    EXPECT_TRUE(
        near(c.flow_mel,
             std::vector<float>(want.begin() + c.flow_first_frame * flow_->mel_bins(), want.end()),
             kMelTolerance))
        << i;
    sent += static_cast<int64_t>(c.audio.size());
    all.insert(all.end(), c.audio.begin(), c.audio.end());
  }
  EXPECT_EQ(7 * i, schedule.size());
  EXPECT_FALSE(set().has("stream" + std::to_string(i) + "_out.npy")) << "fewer chunks";
  // The last vocoder call covers the whole mel: its envelope bounds every chunk's audio.
  const auto mel = channels_last("stream" + std::to_string(i - 1) + "_hift_mel.npy");
  EXPECT_TRUE(golden::sounds_near(all, floats("stream_speech.npy"),
                                  mel_tolerance_envelope(*hift_, mel, true)));
}
INSTANTIATE_TEST_SUITE_P(Flow, GoldenCv3Stream, ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? std::string("Incremental")
                                             : std::string("Recomputing");
                         });

// Incremental chunks give the recomputed chunks' frames: the same arithmetic over the same
// keys, only batched differently (float rounding).
TEST_F(GoldenCv3E2e, IncrementalFlowEqualsRecomputing) {
  const auto tokens = ints("stream_tokens.npy");
  std::vector<std::vector<float>> mel(2);
  for (const bool incremental : {false, true}) {
    Cv3StreamOptions o;
    o.incremental = incremental;
    Cv3Token2Wav s(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_, o);
    s.push_tokens(tokens);
    s.finish();
    while (!s.done()) {
      const Cv3Chunk c = s.step();
      if (c.final) break;  // full attention: the same full call either way
      const int64_t emitted = static_cast<int64_t>(mel[incremental].size()) / flow_->mel_bins();
      mel[incremental].insert(
          mel[incremental].end(),
          c.flow_mel.begin() + (emitted - c.flow_first_frame) * flow_->mel_bins(),
          c.flow_mel.end());
    }
  }
  ASSERT_FALSE(mel[0].empty());
  EXPECT_TRUE(near(mel[1], mel[0], 1e-5));
}

// Over a long stream (24 s of tokens in 1 s chunks, every chunk chunk-causal), incremental
// streaming gives every chunk's audio as the official recompute does: the flow's state and
// the vocoder's carried phases stay exact however far the stream runs.
TEST_F(GoldenCv3E2e, IncrementalEqualsRecomputingOverALongStream) {
  const auto base = ints("stream_tokens.npy");
  std::vector<int32_t> tokens(600);
  for (size_t i = 0; i < tokens.size(); ++i)  // the fixture's tokens, shuffled per pass
    tokens[i] = base[(i * 7 + i / base.size()) % base.size()];
  std::vector<std::vector<std::vector<float>>> audio(2);
  for (const bool incremental : {false, true}) {
    Cv3StreamOptions o;
    o.incremental = incremental;
    o.first_hop = o.max_hop = 25;
    o.final_full_attention = false;
    Cv3Token2Wav s(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_, o);
    s.push_tokens(tokens);
    s.finish();
    while (!s.done()) audio[incremental].push_back(s.step().audio);
  }
  ASSERT_EQ(audio[0].size(), audio[1].size());
  // Many chunks whatever this set's prompt length: 1 s hops, the first padded by at most 24.
  ASSERT_GE(audio[0].size(), tokens.size() / 25 - 1);
  int64_t samples = 0;
  for (size_t k = 0; k < audio[0].size(); ++k) {
    samples += static_cast<int64_t>(audio[0][k].size());
    EXPECT_TRUE(near(audio[1][k], audio[0][k], 1e-5)) << "chunk " << k;
  }
  EXPECT_EQ(samples, static_cast<int64_t>(tokens.size()) * 2 * hift_->samples_per_frame());
}

// A chunk-causal last chunk (final_full_attention off): incremental gives the recomputed
// frames, and the last chunk's frames differ from the official full-attention ones.
TEST_F(GoldenCv3E2e, ChunkCausalLastChunkIsIncrementalToo) {
  const auto tokens = ints("stream_tokens.npy");
  std::vector<std::vector<float>> last(2);
  for (const bool incremental : {false, true}) {
    Cv3StreamOptions o;
    o.incremental = incremental;
    o.final_full_attention = false;
    Cv3Token2Wav s(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_, o);
    s.push_tokens(tokens);
    s.finish();
    Cv3Chunk c;
    int64_t emitted = 0;
    while (!s.done()) {
      c = s.step();
      if (!c.final)
        emitted = c.flow_first_frame + static_cast<int64_t>(c.flow_mel.size()) / flow_->mel_bins();
    }
    ASSERT_TRUE(c.final);
    EXPECT_EQ(c.flow_first_frame > 0, incremental);  // the last call skipped committed frames
    // The last chunk's new frames.
    const int64_t from = (emitted - c.flow_first_frame) * flow_->mel_bins();
    ASSERT_GE(from, 0);
    last[incremental].assign(c.flow_mel.begin() + from, c.flow_mel.end());
  }
  ASSERT_FALSE(last[0].empty());
  EXPECT_TRUE(near(last[1], last[0], 1e-5));
  // The official last chunk (full attention) makes other frames.
  int64_t chunks = 0;
  while (set().has("stream" + std::to_string(chunks + 1) + "_flow_mel.npy")) ++chunks;
  const auto official = channels_last("stream" + std::to_string(chunks) + "_flow_mel.npy");
  const std::vector<float> official_last(
      official.end() - static_cast<std::ptrdiff_t>(last[0].size()), official.end());
  EXPECT_FALSE(near(last[0], official_last, kMelTolerance));
}

TEST_F(GoldenCv3E2e, OfflineIsOneFlowCallAndOneVocoderCall) {
  std::vector<float> mel;
  const auto speech = Cv3Token2Wav::offline(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_,
                                            ints("stream_tokens.npy"), &mel);
  EXPECT_TRUE(near(mel, channels_last("nonstream_mel.npy"), kMelTolerance));
  EXPECT_TRUE(golden::sounds_near(speech, floats("nonstream_speech.npy"),
                                  mel_tolerance_envelope(*hift_, mel, true)));
}

// Text → greedy tokens (official EOS guard) → the silent cap → the flow → the vocoder.
TEST_F(GoldenCv3E2e, TextToSpeechMatches) {
  const SpeechLm lm(*backend_, folder_->config.llm, folder_->llm);
  LmSession s(LmSessionLimits::of(lm), golden::greedy_options(ints("prompt_text_ids.npy"), *prompt_,
                                                              ints("e2e_text_ids.npy")));
  LmRunner runner(*backend_, lm);
  LmSession* one[] = {&s};
  while (!s.finished()) runner.step(one);
  SilentTokenCap cap(SilentTokenCap::cosyvoice3());
  std::vector<int32_t> kept;
  for (const int32_t t : s.tokens())
    if (cap.keep(t)) kept.push_back(t);
  ASSERT_EQ(kept, ints("e2e_tokens.npy"));
  std::vector<float> mel;
  const auto speech =
      Cv3Token2Wav::offline(*flow_, *hift_, *prompt_, *prompt_feat_, *embedding_, kept, &mel);
  EXPECT_TRUE(near(mel, channels_last("e2e_mel.npy"), kMelTolerance));
  EXPECT_TRUE(golden::sounds_near(speech, floats("e2e_speech.npy"),
                                  mel_tolerance_envelope(*hift_, mel, true)));
}

// The same case through the engine (Engine::open, text ids in, greedy, stream=False): the
// stream reports the LM's tokens, the flow heard them after the silent-token cap, and the
// mel and audio are the official ones.
TEST_F(GoldenCv3E2e, TheEngineSpeaksTheEndToEndCase) {
  Engine engine(*backend_, *folder_);
  auto voice = std::make_shared<VoicePrompt>();
  voice->text = ints("prompt_text_ids.npy");
  voice->lm_speech = *prompt_;
  voice->speech = *prompt_;
  voice->feat = *prompt_feat_;
  voice->embedding = *embedding_;
  StreamOptions o;
  o.voice = voice;
  o.streaming = false;
  o.sampling.method = SamplingMethod::Greedy;
  std::vector<float> mel, speech;
  auto stream = engine.open(o, [&](const AudioChunk& c) {
    mel.insert(mel.end(), c.mel.begin(), c.mel.end());
    speech.insert(speech.end(), c.samples.begin(), c.samples.end());
    return true;
  });
  stream->push_text_ids(ints("e2e_text_ids.npy"));
  stream->finish_input();
  const StreamResult r = stream->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  SilentTokenCap cap(SilentTokenCap::cosyvoice3());
  std::vector<int32_t> kept;
  for (const int32_t t : r.speech_tokens)
    if (cap.keep(t)) kept.push_back(t);
  EXPECT_EQ(kept, ints("e2e_tokens.npy"));
  EXPECT_TRUE(near(mel, channels_last("e2e_mel.npy"), kMelTolerance));
  EXPECT_TRUE(golden::sounds_near(speech, floats("e2e_speech.npy"),
                                  mel_tolerance_envelope(*hift_, mel, true)));
}

}  // namespace
}  // namespace cosy
