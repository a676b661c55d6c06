// The engine on a CosyVoice3 folder (make-model --preset cosyvoice3-tiny): the same
// scheduler, streams and options as CosyVoice2, with CosyVoice3's stages. What a stream
// sends must be what the model's own reference schedule (Cv3Token2Wav) gives.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "kernels/cpu_backend.h"
#include "model/dit/token2wav.h"
#include "model/model_folder.h"
#include "model/model_writer.h"
#include "model/test_model_util.h"
#include "runtime/engine.h"
#include "runtime/silent_tokens.h"
#include "runtime/stages/cosyvoice3_stages.h"
#include "runtime/test_voice_util.h"
#include "runtime/voice_maker.h"

namespace cosy {
namespace {

struct Heard {
  std::mutex mutex;
  std::vector<float> samples;
  std::vector<size_t> chunk_sizes;
  AudioCallback callback() {
    return [this](const AudioChunk& c) {
      std::lock_guard lock(mutex);
      samples.insert(samples.end(), c.samples.begin(), c.samples.end());
      if (!c.samples.empty()) chunk_sizes.push_back(c.samples.size());
      return true;
    };
  }
};

// Largest |a - b| over the larger magnitude of b (the streams run in other batches, so
// float sums may be reordered).
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return worst / scale;
}

// Float32 reordering across batch shapes (row-wise kernels make it 0 on one machine; a
// wrong schedule, e.g. another first hop, is off by 4e-4).
constexpr double kReorder = 1e-5;

class EngineCv3 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend(2).release();
    const auto dir = testing::scratch_dir("engine-cv3-" + std::to_string(::getpid()));
    WriteModelOptions o;
    o.frontend = WriteModelOptions::Frontend::None;
    write_model_folder(preset_config("cosyvoice3-tiny"), dir, o);
    folder_ = new ModelFolder(load_model_folder(dir));
  }
  static void TearDownTestSuite() {
    delete folder_;
    delete backend_;
  }
  static std::vector<int32_t> tokens(size_t n, int32_t base) {
    std::vector<int32_t> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = (base + int32_t(i) * 37) % 6561;
    return t;
  }
  static StreamOptions token_stream(Engine& engine, bool streaming) {
    StreamOptions o;
    o.voice = engine.voice(engine.voice_ids().at(0));
    o.input = StreamInput::SpeechTokens;
    o.streaming = streaming;
    return o;
  }
  // The audio the reference schedule gives for these tokens and this voice.
  static std::vector<float> reference(Engine& engine, const VoicePrompt& v,
                                      const std::vector<int32_t>& t, bool streaming,
                                      const FlowStreamOptions& fo = {}) {
    const auto& flow = dynamic_cast<const Cv3FlowStage&>(engine.flow()).model();
    const auto& hift = dynamic_cast<const Cv3VocoderStage&>(engine.vocoder()).model();
    if (!streaming) return Cv3Token2Wav::offline(flow, hift, v.speech, v.feat, v.embedding, t);
    Cv3Token2Wav s(flow, hift, v.speech, v.feat, v.embedding, fo);
    s.push_tokens(t);
    s.finish();
    std::vector<float> audio;
    while (!s.done()) {
      const Cv3Chunk c = s.step();
      audio.insert(audio.end(), c.audio.begin(), c.audio.end());
    }
    return audio;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
};
Backend* EngineCv3::backend_ = nullptr;
ModelFolder* EngineCv3::folder_ = nullptr;

TEST_F(EngineCv3, LoadsTheFamilysStages) {
  Engine engine(*backend_, *folder_);
  EXPECT_EQ(engine.family(), ModelFamily::CosyVoice3);
  EXPECT_NE(dynamic_cast<const Cv3FlowStage*>(&engine.flow()), nullptr);
  EXPECT_NE(dynamic_cast<const Cv3VocoderStage*>(&engine.vocoder()), nullptr);
  EXPECT_EQ(engine.lm().vocab().size(), 6561 + 200);
  ASSERT_FALSE(engine.voice_ids().empty());
}

// Speech tokens arriving a few at a time, streamed and offline: the same audio as the
// reference schedule, chunk for chunk in streaming.
TEST_F(EngineCv3, SpeechTokensGiveTheReferenceAudio) {
  Engine engine(*backend_, *folder_);
  const auto t = tokens(140, 5);
  for (const bool streaming : {true, false}) {
    Heard heard;
    StreamOptions o = token_stream(engine, streaming);
    auto s = engine.open(o, heard.callback());
    for (size_t i = 0; i < t.size(); i += 9)
      s->push_speech_tokens(std::span(t).subspan(i, std::min<size_t>(9, t.size() - i)));
    s->finish_input();
    const StreamResult r = s->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    EXPECT_EQ(r.speech_tokens, t);
    const auto want = reference(engine, *o.voice, t, streaming);
    EXPECT_EQ(heard.samples.size(), 2 * t.size() * 480);
    EXPECT_LT(relative_error(heard.samples, want), kReorder) << "streaming " << streaming;
    if (streaming) {
      EXPECT_GE(heard.chunk_sizes.size(), 3u);  // 140 tokens: hops of 25+pad, 50, then the end
    } else {
      EXPECT_EQ(heard.chunk_sizes.size(), 1u);
    }
  }
}

// The voice's cached prompt state (on by default) gives the chunks the reference computes
// from scratch, whatever the prompt's length (with 3 + a multiple of 25 tokens the
// state must stop a chunk short), and later streams start from it.
TEST_F(EngineCv3, PromptStateGivesTheReferenceForEveryPromptLength) {
  Engine engine(*backend_, *folder_);
  ASSERT_TRUE(engine.flow().has_prompt_state());
  const auto base = engine.voice(engine.voice_ids().at(0));
  const auto bins = static_cast<size_t>(engine.flow().mel_bins());
  const auto t = tokens(70, 9);
  for (const size_t length : {size_t{53}, size_t{74}, size_t{78}, size_t{103}}) {
    const auto v = testing::voice_with_prompt_length(*base, length, bins);
    const int64_t starts = engine.stats().prompt_state_starts;
    for (int run = 0; run < 2; ++run) {
      Heard heard;
      StreamOptions o = token_stream(engine, true);
      o.voice = v;
      auto s = engine.open(o, heard.callback());
      s->push_speech_tokens(t);
      s->finish_input();
      const StreamResult r = s->wait();
      ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
      EXPECT_LT(relative_error(heard.samples, reference(engine, *v, t, true)), kReorder)
          << "a prompt of " << length << " tokens, run " << run;
    }
    EXPECT_EQ(engine.stats().prompt_state_starts, starts + 2) << length;
  }
  EXPECT_GT(engine.stats().prompt_state_bytes, 0);
}

// Streams at different positions share the engine's batched calls; each hears what it
// would alone.
TEST_F(EngineCv3, ConcurrentStreamsEqualEachAlone) {
  Engine engine(*backend_, *folder_);
  const std::vector<std::vector<int32_t>> inputs = {tokens(60, 1), tokens(130, 2), tokens(95, 3)};
  std::vector<Heard> heard(inputs.size());
  std::vector<std::shared_ptr<SynthesisStream>> streams;
  for (size_t k = 0; k < inputs.size(); ++k) {
    StreamOptions o = token_stream(engine, true);
    o.flow.first_hop = 15 + 10 * static_cast<int64_t>(k);
    streams.push_back(engine.open(o, heard[k].callback()));
  }
  for (size_t i = 0; i < 130; i += 11) {
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (i < inputs[k].size())
        streams[k]->push_speech_tokens(
            std::span(inputs[k]).subspan(i, std::min<size_t>(11, inputs[k].size() - i)));
    }
  }
  for (auto& s : streams) s->finish_input();
  for (size_t k = 0; k < inputs.size(); ++k) {
    const StreamResult r = streams[k]->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    FlowStreamOptions fo;
    fo.first_hop = 15 + 10 * static_cast<int64_t>(k);
    const auto want = reference(engine, *streams[k]->options().voice, inputs[k], true, fo);
    EXPECT_LT(relative_error(heard[k].samples, want), kReorder) << "stream " << k;
  }
  EXPECT_GT(engine.stats().flow.flops, 0);
  EXPECT_GT(engine.stats().hift.flops, 0);
}

// Text through CosyVoice3's LM, whole and bistream, with the folder's voice (whose prompt
// text carries the instruction and <|endofprompt|>), the quality guard off and on.
TEST_F(EngineCv3, TextIsSpokenThroughTheLm) {
  Engine engine(*backend_, *folder_);
  ASSERT_NE(engine.frontend(), nullptr);
  for (const StreamInput input : {StreamInput::Text, StreamInput::IncrementalText}) {
    for (const bool guard : {false, true}) {
      Heard heard;
      StreamOptions o;
      o.voice = engine.voice(engine.voice_ids().at(0));
      o.input = input;
      o.fixed_tokens = 40;
      o.guard.enabled = guard;
      auto s = engine.open(o, heard.callback());
      s->push_text("Hello there, ");
      s->push_text("how are you today?");
      s->finish_input();
      const StreamResult r = s->wait();
      ASSERT_EQ(r.status, StreamStatus::Done) << stream_input_name(input) << ": " << r.error;
      EXPECT_EQ(r.speech_tokens.size(), 40u);
      for (const int32_t t : r.speech_tokens) EXPECT_LT(t, 6561);
      EXPECT_EQ(heard.samples.size(), 40u * 2 * 480);
      for (const float v : heard.samples) ASSERT_TRUE(std::isfinite(v));
      EXPECT_EQ(r.quality.enabled, guard);
      EXPECT_EQ(r.quality.tokens, 40);
    }
  }
}

// A voice whose prompt text lacks <|endofprompt|>: CosyVoice3 refuses the text with a clear
// error instead of speaking from a malformed prompt.
TEST_F(EngineCv3, APromptWithoutEndOfPromptIsRefused) {
  Engine engine(*backend_, *folder_);
  auto v = std::make_shared<VoicePrompt>(*engine.voice(engine.voice_ids().at(0)));
  v->text.resize(3);  // part of the instruction, no <|endofprompt|>
  StreamOptions o;
  o.voice = v;
  o.input = StreamInput::Text;
  o.fixed_tokens = 10;
  auto s = engine.open(o);
  s->push_text("Hello.");
  s->finish_input();
  const StreamResult r = s->wait();
  EXPECT_EQ(r.status, StreamStatus::Failed);
  EXPECT_NE(r.error.find("<|endofprompt|>"), std::string::npos) << r.error;
}

// Cross-lingual on CosyVoice3: the LM hears no transcript and no prompt speech, but still
// the instruction its official examples put in front of the text; without it the request
// is refused as above.
TEST_F(EngineCv3, CrossLingualKeepsTheInstructionAndTheFlowPrompt) {
  Engine engine(*backend_, *folder_);
  const auto voice = engine.voice(engine.voice_ids().at(0));
  const auto cross = cross_lingual(voice, engine.frontend());
  EXPECT_TRUE(cross->lm_speech.empty());
  EXPECT_EQ(cross->text, engine.frontend()->encode(kCosyVoice3DefaultInstruction));
  EXPECT_EQ(cross->speech, voice->speech);
  EXPECT_EQ(cross->flow_identity(), voice.get());
  for (const bool with_instruction : {true, false}) {
    StreamOptions o;
    o.voice = with_instruction ? cross : cross_lingual(voice);
    o.fixed_tokens = 20;
    auto s = engine.open(o);
    s->push_text("Hello there.");
    s->finish_input();
    const StreamResult r = s->wait();
    EXPECT_EQ(r.status, with_instruction ? StreamStatus::Done : StreamStatus::Failed) << r.error;
  }
}

// The silent-token cap sits between the LM and the flow: an LM made to emit only silent
// tokens is heard for 5 tokens' worth of audio, while the stream reports every token the
// LM produced.
TEST_F(EngineCv3, OnlyFiveSilentTokensInARowReachTheFlow) {
  const auto silent = SilentTokenCap::cosyvoice3();
  ASSERT_GE(silent.silent.size(), 2u);
  // The head scores two silent tokens ±1000 along one direction and every other row 0, so
  // one of the two wins at every step whatever the hidden state.
  ModelFolder biased = *folder_;
  StateDict llm;
  llm.label = folder_->llm.label;
  for (const std::string& name : folder_->llm.names()) {
    if (name != "llm_decoder.weight") {
      llm.add(name, folder_->llm.at(name));
      continue;
    }
    const Tensor& w = folder_->llm.at(name);
    Tensor head = Tensor::zeros(DType::F32, w.shape());
    const int64_t d = w.shape()[1];
    float* rows = head.mutable_data<float>();
    for (int64_t k = 0; k < d; ++k) {
      const float u = (k % 3 == 0 ? 1.0f : -0.5f) * 1000.0f;
      rows[silent.silent[0] * d + k] = u;
      rows[silent.silent[1] * d + k] = -u;
    }
    llm.add(name, head);
  }
  biased.llm = llm;
  Engine engine(*backend_, biased);
  Heard heard;
  StreamOptions o;
  o.voice = engine.voice(engine.voice_ids().at(0));
  o.input = StreamInput::Text;
  o.streaming = false;
  o.fixed_tokens = 30;
  auto s = engine.open(o, heard.callback());
  s->push_text("Hello there.");
  s->finish_input();
  const StreamResult r = s->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  ASSERT_EQ(r.speech_tokens.size(), 30u);
  for (const int32_t t : r.speech_tokens)
    EXPECT_TRUE(t == silent.silent[0] || t == silent.silent[1]) << t;
  EXPECT_EQ(heard.samples.size(), size_t(silent.max_run) * 2 * 480);
}

// --flow-left-chunks bounds the DiT's per-stream state as it does the UNet's: a long
// stream keeps a bounded state, and still speaks.
TEST_F(EngineCv3, LeftChunksBoundTheFlowState) {
  std::vector<int64_t> peak;
  for (const std::optional<int64_t> left : {std::optional<int64_t>(), std::optional<int64_t>(1)}) {
    EngineOptions eo;
    eo.flow_left_chunks = left;
    Engine engine(*backend_, *folder_, eo);
    EXPECT_EQ(engine.flow().config().decoder.dit.num_decoding_left_chunks, left.value_or(-1));
    Heard heard;
    StreamOptions o = token_stream(engine, true);
    o.flow.max_hop = 25;  // many chunks
    auto s = engine.open(o, heard.callback());
    const auto t = tokens(400, 7);
    s->push_speech_tokens(t);
    s->finish_input();
    const StreamResult r = s->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    EXPECT_EQ(heard.samples.size(), t.size() * 2 * 480);
    peak.push_back(engine.stats().flow_state_peak_bytes);
  }
  EXPECT_GT(peak[0], 0);
  EXPECT_LT(peak[1] * 2, peak[0]);
}

}  // namespace
}  // namespace cosy
