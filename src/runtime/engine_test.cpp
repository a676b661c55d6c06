#include "runtime/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "kernels/cpu_backend.h"
#include "kernels/packed_weight.h"
#include "model/model_folder.h"
#include "model/test_model_util.h"
#include "runtime/test_voice_util.h"

namespace cosy {
namespace {

struct Audio {
  std::mutex mutex;
  std::vector<float> samples;
  std::vector<int64_t> segments;
  int chunks = 0, lasts = 0;
  AudioCallback callback() {
    return [this](const AudioChunk& c) {
      std::lock_guard lock(mutex);
      samples.insert(samples.end(), c.samples.begin(), c.samples.end());
      segments.push_back(c.segment);
      ++chunks;
      lasts += c.last ? 1 : 0;
      return true;
    };
  }
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend(2).release();
    // One folder per process: ctest runs the tests of this suite in parallel processes.
    folder_ = new ModelFolder(
        load_model_folder(testing::write_small_model("engine-test-" + std::to_string(::getpid()))));
  }
  static void TearDownTestSuite() {
    delete folder_;
    delete backend_;
  }
  static StreamOptions options(Engine& engine, uint64_t seed) {
    StreamOptions o;
    o.voice = engine.voice(engine.voice_ids().at(0));
    o.sampling.seed = seed;
    o.vocoder_seed = seed;
    o.flow.first_hop = 15;
    return o;
  }
  static std::vector<int32_t> text(size_t n, int32_t base) {
    std::vector<int32_t> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = (base + int32_t(i) * 7) % 250;
    return t;
  }
  static void expect_concurrent_streams_equal_each_alone(const EngineOptions& eo);
  // Runs `text` through a stream of `input`, piece by piece (split at spaces) when
  // incremental; returns finish_input's error ("" when it took the text) and the audio.
  static std::pair<std::string, int64_t> speak(Engine& engine, StreamInput input,
                                               const std::string& text);
  static Backend* backend_;
  static ModelFolder* folder_;
};
Backend* EngineTest::backend_ = nullptr;

std::pair<std::string, int64_t> EngineTest::speak(Engine& engine, StreamInput input,
                                                  const std::string& text) {
  StreamOptions o = options(engine, 1);
  o.input = input;
  o.fixed_tokens = 10;
  int64_t samples = 0;
  auto s = engine.open(o, [&](const AudioChunk& c) {
    samples += static_cast<int64_t>(c.samples.size());
    return true;
  });
  if (input == StreamInput::IncrementalText) {
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
      if (i == text.size() || text[i] == ' ') {
        s->push_text(text.substr(start, i + 1 - start));
        start = i + 1;
      }
    }
  } else {
    s->push_text(text);
  }
  std::string error = testing::error_of([&] { s->finish_input(); });
  if (!error.empty()) s->cancel();
  const StreamResult r = s->wait();
  if (error.empty() && r.status != StreamStatus::Done) error = r.error;
  return {error, samples};
}

// The bistream path refuses what the whole-text path refuses, with the same error, and the
// LM never sees text that has nothing to speak.
TEST_F(EngineTest, TextWithNothingToSpeakIsRefusedTheSameWayOnBothPaths) {
  Engine engine(*backend_, *folder_);
  ASSERT_NE(engine.frontend(), nullptr);
  for (const std::string text :
       {"!!!", "?? ... !", "\U0001F600 \U0001F389", "\u200B\u200B", "\x01\x02 \x7F", "  \t "}) {
    for (const StreamInput input : {StreamInput::Text, StreamInput::IncrementalText}) {
      const auto [error, samples] = speak(engine, input, text);
      EXPECT_EQ(error, kNothingToSpeak) << stream_input_name(input) << ": '" << text << "'";
      EXPECT_EQ(samples, 0) << stream_input_name(input) << ": '" << text << "'";
    }
  }
  // Leading punctuation is held back, not lost, once words follow.
  for (const StreamInput input : {StreamInput::Text, StreamInput::IncrementalText}) {
    const auto [error, samples] = speak(engine, input, "... Hello there!");
    EXPECT_EQ(error, "") << stream_input_name(input);
    EXPECT_GT(samples, 0) << stream_input_name(input);
  }
}

TEST_F(EngineTest, TextOverTheInputLimitIsRefusedBeforeAnythingIsQueued) {
  EngineOptions eo;
  eo.max_input_chars = 12;
  Engine engine(*backend_, *folder_, eo);
  for (const StreamInput input : {StreamInput::Text, StreamInput::IncrementalText}) {
    StreamOptions o = options(engine, 1);
    o.input = input;
    auto s = engine.open(o);
    s->push_text("你好，世界！Hello.");  // 12 characters, 24 bytes: within the limit
    const std::string error = testing::error_of([&] { s->push_text("x"); });
    EXPECT_NE(error.find("limit of 12 characters"), std::string::npos) << error;
    s->cancel();
  }
  eo.max_input_chars = 0;
  EXPECT_NE(testing::error_of([&] { Engine bad(*backend_, *folder_, eo); }).find("max_input_chars"),
            std::string::npos);
}
ModelFolder* EngineTest::folder_ = nullptr;

// Streams batched together give exactly what each gives alone: nothing leaks between them.
void EngineTest::expect_concurrent_streams_equal_each_alone(const EngineOptions& eo) {
  Engine engine(*backend_, *folder_, eo);
  struct Case {
    uint64_t seed;
    size_t text_len;
    bool streaming;
  };
  const std::vector<Case> cases = {{1, 5, true}, {2, 9, true}, {3, 3, false}, {4, 7, true}};
  std::vector<StreamResult> alone;
  std::vector<std::vector<float>> alone_audio;
  for (const Case& c : cases) {
    StreamOptions o = options(engine, c.seed);
    o.streaming = c.streaming;
    Audio audio;
    auto s = engine.open(o, audio.callback());
    s->push_text_ids(text(c.text_len, int32_t(c.seed)));
    s->finish_input();
    alone.push_back(s->wait());
    ASSERT_EQ(alone.back().status, StreamStatus::Done) << alone.back().error;
    EXPECT_EQ(audio.lasts, 1);
    EXPECT_FALSE(audio.samples.empty());
    alone_audio.push_back(audio.samples);
  }
  // All at once, opened from different threads.
  std::vector<Audio> audio(cases.size());
  std::vector<std::shared_ptr<SynthesisStream>> streams(cases.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cases.size(); ++i) {
    threads.emplace_back([&, i] {
      StreamOptions o = options(engine, cases[i].seed);
      o.streaming = cases[i].streaming;
      streams[i] = engine.open(o, audio[i].callback());
      streams[i]->push_text_ids(text(cases[i].text_len, int32_t(cases[i].seed)));
      streams[i]->finish_input();
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < cases.size(); ++i) {
    const StreamResult r = streams[i]->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    EXPECT_EQ(r.speech_tokens, alone[i].speech_tokens) << i;
    EXPECT_EQ(audio[i].samples, alone_audio[i]) << i;
  }
  const EngineStats st = engine.stats();
  EXPECT_EQ(st.streams_open, 0);
  EXPECT_EQ(st.streams_opened, int64_t(2 * cases.size()));
  EXPECT_GT(st.llm.calls, 0);
  EXPECT_GT(st.flow.flops, 0);
  // Batching happened: fewer LM calls than stream-steps.
  EXPECT_LT(st.llm.calls, st.llm.items);
}

TEST_F(EngineTest, ConcurrentStreamsEqualEachAlone) {
  expect_concurrent_streams_equal_each_alone({});
}

// A w8a8 LM (opt-in) quantises each activation row on its own, so a stream's tokens do not
// depend on which streams share its batch either.
TEST_F(EngineTest, W8a8LmStreamsEqualEachAlone) {
  EngineOptions eo;
  eo.llm_weights = WeightFormat::W8A8;
  if (!backend_->supports_weight_format(WeightFormat::W8A8)) {
    EXPECT_THROW(Engine(*backend_, *folder_, eo), Error);
    GTEST_SKIP() << "this CPU has no AVX512-VNNI; a w8a8 LM is refused (checked)";
  }
  expect_concurrent_streams_equal_each_alone(eo);
}

// Beam search through the engine: deterministic, so a streamed run (which sends only the
// prefix the beams share) speaks the same tokens as an offline one, alone or beside a
// sampled stream; and it is a different decoding from sampling.
TEST_F(EngineTest, BeamSearchStreamsTheTokensItWouldReturnOffline) {
  Engine engine(*backend_, *folder_);
  const auto run = [&](bool streaming, int64_t beams, bool beside_sampled) {
    StreamOptions o = options(engine, 3);
    o.streaming = streaming;
    o.beams.num_beams = beams;
    Audio audio, other_audio;
    std::shared_ptr<SynthesisStream> other;
    if (beside_sampled) {
      other = engine.open(options(engine, 8), other_audio.callback());
      other->push_text_ids(text(6, 8));
      other->finish_input();
    }
    auto s = engine.open(o, audio.callback());
    s->push_text_ids(text(4, 5));
    s->finish_input();
    StreamResult r = s->wait();
    if (other) {
      EXPECT_EQ(other->wait().status, StreamStatus::Done);
    }
    EXPECT_EQ(audio.lasts, 1);
    EXPECT_EQ(r.samples, int64_t(audio.samples.size()));
    return r;
  };
  const StreamResult offline = run(false, 4, false);
  ASSERT_EQ(offline.status, StreamStatus::Done) << offline.error;
  const StreamResult streamed = run(true, 4, false);
  ASSERT_EQ(streamed.status, StreamStatus::Done) << streamed.error;
  EXPECT_EQ(streamed.speech_tokens, offline.speech_tokens);
  const StreamResult beside = run(true, 4, true);
  ASSERT_EQ(beside.status, StreamStatus::Done) << beside.error;
  EXPECT_EQ(beside.speech_tokens, offline.speech_tokens);
  const StreamResult sampled = run(true, 1, false);
  EXPECT_NE(sampled.speech_tokens, offline.speech_tokens);
  EXPECT_EQ(engine.stats().streams_open, 0);
}

TEST_F(EngineTest, SegmentsRunInOrderAsOneStream) {
  Engine engine(*backend_, *folder_);
  Audio audio;
  auto s = engine.open(options(engine, 5), audio.callback());
  s->push_text_ids(text(4, 1));
  s->push_text_ids(text(6, 2));
  s->finish_input();
  const StreamResult r = s->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  EXPECT_EQ(r.segments, 2);
  EXPECT_TRUE(std::is_sorted(audio.segments.begin(), audio.segments.end()));
  EXPECT_EQ(audio.segments.back(), 1);
  EXPECT_EQ(r.samples, int64_t(audio.samples.size()));
}

TEST_F(EngineTest, FixedTokensGivesThatManyTokens) {
  Engine engine(*backend_, *folder_);
  StreamOptions o = options(engine, 9);
  o.fixed_tokens = 37;
  auto s = engine.open(o);
  s->push_text_ids(text(2, 3));  // 20 x 2 would cap it at 40; EOS is banned below 37
  s->finish_input();
  const StreamResult r = s->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  EXPECT_EQ(r.speech_tokens.size(), 37u);
  // Each speech token is token_mel_ratio mel frames of samples_per_frame samples.
  EXPECT_EQ(r.samples,
            37 * folder_->config.flow.token_mel_ratio * folder_->config.hift.samples_per_frame());
}

// speed stretches the mel before the vocoder: int(frames / speed) frames, streaming or not,
// and speed 1 is untouched.
TEST_F(EngineTest, SpeedChangesTheLengthByItsFactor) {
  Engine engine(*backend_, *folder_);
  const int64_t frames = 40 * folder_->config.flow.token_mel_ratio;
  const int64_t per_frame = folder_->config.hift.samples_per_frame();
  for (const bool streaming : {true, false}) {
    for (const double speed : {1.0, 2.0, 0.5, 1.25}) {
      StreamOptions o = options(engine, 9);
      o.fixed_tokens = 40;
      o.streaming = streaming;
      o.speed = speed;
      auto s = engine.open(o);
      s->push_text_ids(text(3, 3));
      s->finish_input();
      const StreamResult r = s->wait();
      ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
      EXPECT_EQ(r.speech_tokens.size(), 40u);
      EXPECT_EQ(r.samples, static_cast<int64_t>(static_cast<double>(frames) / speed) * per_frame)
          << "streaming " << streaming << " speed " << speed;
    }
  }
  StreamOptions bad = options(engine, 1);
  bad.speed = 3.0;
  EXPECT_THROW(engine.open(bad), Error);
}

TEST_F(EngineTest, CallbackOrCancelStopsAStream) {
  Engine engine(*backend_, *folder_);
  std::atomic<int> calls{0};
  StreamOptions o = options(engine, 3);
  o.fixed_tokens = 80;
  auto s = engine.open(o, [&](const AudioChunk&) {
    ++calls;
    return false;
  });
  s->push_text_ids(text(5, 1));
  s->finish_input();
  EXPECT_EQ(s->wait().status, StreamStatus::Cancelled);
  EXPECT_EQ(calls.load(), 1);
  // cancel() from the caller, while the stream waits for more text.
  StreamOptions b = options(engine, 4);
  b.input = StreamInput::IncrementalText;
  auto waiting = engine.open(b);
  waiting->push_text_ids(text(3, 2));
  waiting->cancel();
  waiting->cancel();  // idempotent
  EXPECT_EQ(waiting->wait().status, StreamStatus::Cancelled);
  EXPECT_THROW(waiting->push_text_ids(text(1, 1)), Error);  // ended
  EXPECT_EQ(engine.stats().streams_open, 0);
}

// A bistream stream waiting for text holds up nobody; when its text comes it finishes.
TEST_F(EngineTest, IncrementalTextWaitsWithoutBlockingOthers) {
  Engine engine(*backend_, *folder_);
  StreamOptions b = options(engine, 6);
  b.input = StreamInput::IncrementalText;
  Audio bistream_audio;
  auto slow = engine.open(b, bistream_audio.callback());
  slow->push_text_ids(text(2, 4));
  auto quick = engine.open(options(engine, 7));
  quick->push_text_ids(text(5, 5));
  quick->finish_input();
  EXPECT_EQ(quick->wait().status, StreamStatus::Done);
  EXPECT_FALSE(slow->done());
  for (int i = 0; i < 4; ++i) slow->push_text_ids(text(3, i));
  slow->finish_input();
  const StreamResult r = slow->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  EXPECT_FALSE(r.speech_tokens.empty());
  EXPECT_EQ(bistream_audio.lasts, 1);
}

// A bistream stream waiting for text holds KV blocks that another stream needs: the
// engine evicts the waiting stream's cache (it is recomputed when its text comes) instead
// of stalling, and both streams give what each gives alone.
TEST_F(EngineTest, KvPressureEvictsAWaitingStreamInsteadOfStalling) {
  // The bistream stream takes the prompt's text and speech in 5:15 pairs, so its first
  // 18 text ids let it feed the whole prompt, then decode until it asks for more text.
  const int64_t first_text = 18, fixed = 40;
  auto run = [&](Engine& engine, bool together) {
    StreamOptions a = options(engine, 6);
    a.input = StreamInput::IncrementalText;
    a.fixed_tokens = fixed;  // more than it makes before it waits
    StreamOptions b = options(engine, 7);
    b.fixed_tokens = 6;
    std::vector<StreamResult> out(2);
    auto waiting = engine.open(a);
    waiting->push_text_ids(text(size_t(first_text), 4));
    // Until it waits for more text: the LM steps stop.
    for (int64_t seen = -1, i = 0; i < 500; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const int64_t items = engine.stats().llm.items;
      if (items > 0 && items == seen) break;
      seen = items;
    }
    auto finish_waiting = [&] {
      waiting->push_text_ids(text(1, 9));
      waiting->finish_input();
      out[0] = waiting->wait();
    };
    if (!together) finish_waiting();
    auto other = engine.open(b);
    other->push_text_ids(text(5, 5));
    other->finish_input();
    out[1] = other->wait();
    if (together) {
      EXPECT_FALSE(waiting->done());
      finish_waiting();
    }
    return out;
  };
  Engine roomy(*backend_, *folder_);
  const auto alone = run(roomy, false);
  ASSERT_EQ(alone[0].status, StreamStatus::Done) << alone[0].error;
  ASSERT_EQ(alone[1].status, StreamStatus::Done) << alone[1].error;
  // A pool that holds the bistream stream alone, with a block to spare, but not it and the
  // other stream together.
  const VoicePrompt& v = *roomy.voice(roomy.voice_ids().at(0));
  const auto prompt = static_cast<int64_t>(v.text.size() + v.speech.size());
  const int64_t largest = 1 + prompt + first_text + 1 + 1 + fixed;  // sos, text, task_id
  EngineOptions eo;
  eo.kv_block_size = 4;
  eo.kv_blocks = (largest + 3) / 4 + 1;
  Engine tight(*backend_, *folder_, eo);
  const auto together = run(tight, true);
  ASSERT_EQ(together[0].status, StreamStatus::Done) << together[0].error;
  ASSERT_EQ(together[1].status, StreamStatus::Done) << together[1].error;
  EXPECT_GE(tight.stats().lm_evictions, 1);
  EXPECT_EQ(together[0].speech_tokens, alone[0].speech_tokens);
  EXPECT_EQ(together[1].speech_tokens, alone[1].speech_tokens);
}

// A speech-token stream given no tokens ends cleanly, with one (empty) last chunk.
TEST_F(EngineTest, SpeechTokenStreamWithNoTokensEndsCleanly) {
  Engine engine(*backend_, *folder_);
  for (const bool streaming : {true, false}) {
    StreamOptions o = options(engine, 3);
    o.input = StreamInput::SpeechTokens;
    o.streaming = streaming;
    Audio audio;
    auto s = engine.open(o, audio.callback());
    s->finish_input();
    const StreamResult r = s->wait();
    EXPECT_EQ(r.status, StreamStatus::Done) << r.error;
    EXPECT_EQ(r.samples, 0);
    EXPECT_EQ(audio.lasts, 1);
  }
}

TEST_F(EngineTest, AdmissionAndBadInputAreClearErrors) {
  EngineOptions eo;
  eo.max_streams = 1;
  // The same weights in a folder that lost its tokenizer files.
  ModelFolder no_tokenizer = *folder_;
  no_tokenizer.dir = testing::scratch_dir("engine-no-tokenizer-" + std::to_string(::getpid()));
  Engine engine(*backend_, no_tokenizer, eo);
  auto first = engine.open(options(engine, 1));
  EXPECT_THROW(engine.open(options(engine, 2)), Error);                        // at capacity
  EXPECT_THROW(first->push_speech_tokens(std::vector<int32_t>{1, 2}), Error);  // wrong kind
  EXPECT_THROW(first->push_text_ids(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(first->push_text("hi"), Error);  // no tokenizer in this folder
  first->push_text_ids(text(3, 1));
  first->finish_input();
  EXPECT_THROW(first->push_text_ids(text(3, 1)), Error);  // after finish_input
  EXPECT_EQ(first->wait().status, StreamStatus::Done);
  auto second = engine.open(options(engine, 2));  // room again
  second->cancel();
  StreamOptions bad = options(engine, 1);
  bad.flow.first_hop = 0;
  EXPECT_THROW(engine.open(bad), Error);
  bad = options(engine, 1);
  bad.sampling.top_p = 2;
  EXPECT_THROW(engine.open(bad), Error);
  EXPECT_THROW(engine.voice("nobody"), Error);
  EngineOptions zero;
  zero.max_streams = 0;
  EXPECT_THROW(Engine(*backend_, *folder_, zero), Error);
  EngineOptions below_all;
  below_all.flow_left_chunks = -2;
  EXPECT_THROW(Engine(*backend_, *folder_, below_all), Error);
}

// A bounded flow left context replaces the model's num_decoding_left_chunks (the golden
// flow tests check what it computes); unset, the model's own stays.
TEST_F(EngineTest, FlowLeftChunksOverridesTheModels) {
  EngineOptions eo;
  {
    Engine engine(*backend_, *folder_, eo);
    EXPECT_EQ(engine.flow().config().decoder.estimator.num_decoding_left_chunks,
              folder_->config.flow.decoder.estimator.num_decoding_left_chunks);
    EXPECT_NE(eo.to_string().find("flow_left_chunks=model"), std::string::npos);
  }
  eo.flow_left_chunks = 2;
  Engine engine(*backend_, *folder_, eo);
  EXPECT_EQ(engine.flow().config().decoder.estimator.num_decoding_left_chunks, 2);
  StreamOptions o = options(engine, 3);
  auto s = engine.open(o);
  s->push_text_ids(text(6, 4));
  s->finish_input();
  EXPECT_EQ(s->wait().status, StreamStatus::Done);
}

// Streams that start from their voice's cached prompt state, and take their first chunk's
// CFG first pass from the cache, give the mel of streams that compute both themselves.
TEST_F(EngineTest, PromptStateCacheGivesTheSameMel) {
  std::vector<int32_t> tokens(90);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 977 + 13) % 6561);
  std::vector<std::vector<float>> mel(2), audio(2);
  std::vector<int64_t> flow_calls(2), starts(2), first_pass_hits(2);
  int64_t state_bytes = 0;
  for (const int64_t voices : {0, 4}) {
    EngineOptions eo;
    eo.prompt_state_voices = voices;
    eo.uncond_first_passes = voices;
    Engine engine(*backend_, *folder_, eo);
    const size_t k = voices == 0 ? 0 : 1;
    for (int run = 0; run < 2; ++run) {  // the second stream of the voice hits the cache
      StreamOptions o = options(engine, 2);
      o.input = StreamInput::SpeechTokens;
      o.reseed_vocoder_per_chunk = true;
      std::mutex m;
      mel[k].clear();
      audio[k].clear();
      auto s = engine.open(o, [&](const AudioChunk& c) {
        std::lock_guard lock(m);
        mel[k].insert(mel[k].end(), c.mel.begin(), c.mel.end());
        audio[k].insert(audio[k].end(), c.samples.begin(), c.samples.end());
        return true;
      });
      s->push_speech_tokens(tokens);
      s->finish_input();
      ASSERT_EQ(s->wait().status, StreamStatus::Done);
    }
    flow_calls[k] = engine.stats().flow.calls;
    starts[k] = engine.stats().prompt_state_starts;
    first_pass_hits[k] = engine.stats().uncond_first_pass_hits;
    EXPECT_EQ(engine.stats().uncond_first_pass_bytes > 0, voices > 0);
    if (k == 1) state_bytes = engine.stats().prompt_state_bytes;
    EXPECT_GT(engine.stats().flow_state_peak_bytes, 0);  // the streams' own rows
    EXPECT_EQ(engine.stats().flow_state_bytes, 0);       // all ended
  }
  // One extra flow call computed the voice's prompt state, once for both streams.
  EXPECT_EQ(flow_calls[1], flow_calls[0] + 1);
  EXPECT_EQ(starts[0], 0);
  EXPECT_EQ(starts[1], 2);  // both streams started from it
  EXPECT_EQ(first_pass_hits[0], 0);
  EXPECT_EQ(first_pass_hits[1], 1);  // the second stream's first chunk
  EXPECT_GT(state_bytes, 0);
  ASSERT_EQ(mel[0].size(), mel[1].size());
  double diff = 0;
  for (size_t i = 0; i < mel[0].size(); ++i)
    diff = std::max(diff, double(std::fabs(mel[0][i] - mel[1][i])));
  EXPECT_LT(diff, 1e-4);
  EXPECT_EQ(audio[0].size(), audio[1].size());
}

// A voice's prompt state is computed off the scheduler thread: while a voice with a long
// prompt has its state computed, a stream of a voice already kept plays through, and the
// waiting stream then starts from the state.
TEST_F(EngineTest, AVoicesPromptStateHoldsUpOnlyItsOwnStreams) {
  Engine engine(*backend_, *folder_);
  const auto base = engine.voice(engine.voice_ids().at(0));
  const auto slow =
      testing::voice_with_prompt_length(*base, 900, static_cast<size_t>(engine.flow().mel_bins()));
  std::vector<int32_t> tokens(30);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 977 + 13) % 6561);
  auto run = [&](std::shared_ptr<const VoicePrompt> voice, Audio& heard) {
    StreamOptions o = options(engine, 2);
    o.voice = std::move(voice);
    o.input = StreamInput::SpeechTokens;
    auto s = engine.open(o, heard.callback());
    s->push_speech_tokens(tokens);
    s->finish_input();
    return s;
  };
  Audio warm;
  ASSERT_EQ(run(base, warm)->wait().status, StreamStatus::Done);  // base's state is kept now
  const int64_t starts = engine.stats().prompt_state_starts;
  Audio held, other;
  auto waiting = run(slow, held);
  const StreamResult r = run(base, other)->wait();
  ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
  int held_chunks = 0;
  {
    std::lock_guard lock(held.mutex);
    held_chunks = held.chunks;
  }
  // The other voice's stream ended before the slow voice's state was ready.
  EXPECT_EQ(held_chunks, 0);
  EXPECT_EQ(engine.stats().prompt_state_starts, starts + 1);
  const StreamResult w = waiting->wait();
  ASSERT_EQ(w.status, StreamStatus::Done) << w.error;
  EXPECT_EQ(engine.stats().prompt_state_starts, starts + 2);  // it started from the state
  std::lock_guard lock(held.mutex);
  EXPECT_EQ(held.samples.size(), other.samples.size());
}

// The prompt-state cache gives the stream's chunks whatever the prompt's length, and in
// particular when the prompt's last committable chunk ends just before its look-ahead
// tokens (a prompt of 3 + a multiple of 25 tokens).
TEST_F(EngineTest, PromptStateCacheHoldsForEveryPromptLength) {
  std::vector<int32_t> tokens(60);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 977 + 13) % 6561);
  Engine plain(*backend_, *folder_, [] {
    EngineOptions eo;
    eo.prompt_state_voices = 0;
    eo.uncond_first_passes = 0;
    return eo;
  }());
  Engine cached(*backend_, *folder_);
  const auto base = plain.voice(plain.voice_ids().at(0));
  const auto bins = static_cast<size_t>(plain.flow().mel_bins());
  for (const size_t length : {size_t{53}, size_t{74}, size_t{78}, size_t{103}}) {
    const auto v = testing::voice_with_prompt_length(*base, length, bins);
    std::vector<std::vector<float>> mel(2);
    for (const int k : {0, 1}) {
      Engine& engine = k == 0 ? plain : cached;
      StreamOptions o = options(engine, 2);
      o.voice = v;
      o.input = StreamInput::SpeechTokens;
      auto s = engine.open(o, [&](const AudioChunk& c) {
        mel[size_t(k)].insert(mel[size_t(k)].end(), c.mel.begin(), c.mel.end());
        return true;
      });
      s->push_speech_tokens(tokens);
      s->finish_input();
      ASSERT_EQ(s->wait().status, StreamStatus::Done);
    }
    ASSERT_EQ(mel[0].size(), mel[1].size()) << length;
    double diff = 0;
    for (size_t i = 0; i < mel[0].size(); ++i)
      diff = std::max(diff, double(std::fabs(mel[0][i] - mel[1][i])));
    EXPECT_LT(diff, 1e-4) << "a prompt of " << length << " tokens";
  }
  EXPECT_GT(cached.stats().prompt_state_starts, 0);
}

// A voice's later streams start their LM from the prefix (sos + prompt text) an earlier
// stream left in the KV pool, and give the same speech as streams that compute it.
// A bf16 flow (EngineOptions::flow_weights, opt-in) streams the same chunks as the fp32
// one up to its rounding: the mel moves a little, not by garbage.
TEST_F(EngineTest, Bf16FlowStreamsCloseToTheFp32Flow) {
  EngineOptions bf16;
  bf16.flow_weights = WeightFormat::BF16;
  if (!cpu::cpu_has_bf16()) {
    EXPECT_THROW(Engine(*backend_, *folder_, bf16), Error);
    GTEST_SKIP() << "this CPU has no AVX512_BF16; a bf16 flow is refused (checked)";
  }
  std::vector<int32_t> tokens(90);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 977 + 13) % 6561);
  std::vector<std::vector<float>> mel(2);
  for (size_t k = 0; k < 2; ++k) {
    Engine engine(*backend_, *folder_, k == 0 ? EngineOptions{} : bf16);
    StreamOptions o = options(engine, 2);
    o.input = StreamInput::SpeechTokens;
    std::mutex m;
    auto s = engine.open(o, [&](const AudioChunk& c) {
      std::lock_guard lock(m);
      mel[k].insert(mel[k].end(), c.mel.begin(), c.mel.end());
      return true;
    });
    s->push_speech_tokens(tokens);
    s->finish_input();
    ASSERT_EQ(s->wait().status, StreamStatus::Done);
  }
  ASSERT_EQ(mel[0].size(), mel[1].size());
  ASSERT_FALSE(mel[0].empty());
  double diff = 0;
  for (size_t i = 0; i < mel[0].size(); ++i)
    diff = std::max(diff, double(std::fabs(mel[0][i] - mel[1][i])));
  EXPECT_GT(diff, 1e-4);  // rounded
  EXPECT_LT(diff, 0.1);
}

TEST_F(EngineTest, LmVoicePrefixGivesTheSameSpeech) {
  std::vector<std::vector<std::vector<float>>> audio(2);
  std::vector<int64_t> prefix_rows(2);
  size_t prompt_text = 0;
  for (const int64_t prefixes : {0, 8}) {
    EngineOptions eo;
    eo.lm_voice_prefixes = prefixes;
    Engine engine(*backend_, *folder_, eo);
    const size_t k = prefixes == 0 ? 0 : 1;
    for (int run = 0; run < 2; ++run) {
      StreamOptions o = options(engine, 5);
      prompt_text = o.voice->text.size();
      o.streaming = false;
      o.fixed_tokens = 12;
      Audio a;
      auto s = engine.open(o, a.callback());
      s->push_text_ids(text(6 + size_t(run), 40 + run));
      s->finish_input();
      const StreamResult r = s->wait();
      ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
      EXPECT_EQ(r.speech_tokens.size(), 12u);
      audio[k].push_back(a.samples);
    }
    prefix_rows[k] = engine.stats().lm_prefix_rows;
  }
  ASSERT_GE(prompt_text, 3u) << "the test model's voice needs a prompt text";
  EXPECT_EQ(prefix_rows[0], 0);
  // The second stream took sos and the prompt text from the first one's.
  EXPECT_EQ(prefix_rows[1], int64_t(1 + prompt_text));
  ASSERT_EQ(audio[0].size(), audio[1].size());
  for (size_t i = 0; i < audio[0].size(); ++i) {
    ASSERT_EQ(audio[0][i].size(), audio[1][i].size()) << i;
    double diff = 0;
    for (size_t j = 0; j < audio[0][i].size(); ++j)
      diff = std::max(diff, double(std::fabs(audio[0][i][j] - audio[1][i][j])));
    EXPECT_LT(diff, 1e-4) << i;
  }
  EngineOptions bad;
  bad.lm_voice_prefixes = -1;
  EXPECT_THROW(bad.validate(), Error);
}

TEST_F(EngineTest, DestroyingTheEngineEndsOpenStreams) {
  std::shared_ptr<SynthesisStream> s;
  {
    Engine engine(*backend_, *folder_);
    StreamOptions b = options(engine, 1);
    b.input = StreamInput::IncrementalText;
    s = engine.open(b);
    s->push_text_ids(text(2, 1));
  }
  const StreamResult r = s->wait();
  EXPECT_EQ(r.status, StreamStatus::Cancelled);
  EXPECT_THROW(s->push_text_ids(text(1, 1)), Error);
}

}  // namespace
}  // namespace cosy
