// The quality guard on a model that `make-model --hazard loop` writes: an LM biased to loop
// and to hold one token. With the guard off its sampled streams contain long runs and loops
// (so these tests can fail); with it on, none do, at most one regeneration per stream, and
// audio already delivered never changes when the guard rolls the LM back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <vector>

#include "core/torch_generator.h"
#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "model/test_model_util.h"
#include "runtime/engine.h"
#include "runtime/lm_runner.h"
#include "runtime/quality_guard.h"

namespace cosy {
namespace {

class LoopingModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = cpu::create_cpu_backend(2).release();
    folder_ = new ModelFolder(load_model_folder(testing::write_small_model(
        "looping-model-" + std::to_string(::getpid()), 3, WriteModelOptions::Hazard::Loop)));
  }
  static void TearDownTestSuite() {
    delete folder_;
    delete backend_;
  }
  static Backend* backend_;
  static ModelFolder* folder_;
};
Backend* LoopingModel::backend_ = nullptr;
ModelFolder* LoopingModel::folder_ = nullptr;

struct Outcome {
  int64_t long_runs = 0, long_loops = 0;  // streams over the bounds
  int64_t repaired_beyond_masking = 0;    // streams that needed a rollback or regeneration
  int64_t max_regenerations = 0;
  int64_t masked = 0;
  int64_t tokens = 0;
};

// `streams` sampled streams of short random text, `wave` at a time through one runner.
Outcome sample_streams(const SpeechLm& lm, Backend& backend, const QualityGuardOptions& guard,
                       int64_t streams, int64_t wave) {
  LmRunnerOptions ro;
  ro.kv_blocks = 8 * wave;
  LmRunner runner(backend, lm, ro);
  const LmSessionLimits limits = LmSessionLimits::of(lm);
  TorchGenerator rng(11);
  const auto draw = [&](int64_t n) { return static_cast<int32_t>(rng.next_u32() % uint32_t(n)); };
  Outcome out;
  for (int64_t first = 0; first < streams; first += wave) {
    std::vector<std::unique_ptr<LmSession>> sessions;
    for (int64_t i = first; i < std::min(streams, first + wave); ++i) {
      LmSessionOptions o;
      for (int k = 0; k < 6; ++k) o.prompt_text.push_back(draw(200));
      for (int k = 0; k < 30; ++k) o.prompt_speech.push_back(draw(limits.vocab.speech_tokens));
      for (int k = 0; k < 4; ++k) o.text.push_back(draw(200));
      o.sampling.seed = static_cast<uint64_t>(1000 + i);
      o.guard = guard;
      sessions.push_back(std::make_unique<LmSession>(limits, o));
    }
    std::vector<LmSession*> batch;
    for (auto& s : sessions) batch.push_back(s.get());
    for (int step = 0; step < 10000; ++step) {
      if (runner.step(batch).sessions == 0) break;
    }
    for (auto& s : sessions) {
      EXPECT_TRUE(s->finished());
      EXPECT_NE(s->finish_reason(), LmFinish::Error) << s->error();
      const QualityReport r = s->quality_report();
      out.long_runs += longest_run(s->tokens()) > guard.max_run ? 1 : 0;
      out.long_loops += most_loop_repeats(s->tokens(), guard.loop_min_period,
                                          guard.loop_max_period) > guard.loop_repeats
                            ? 1
                            : 0;
      out.repaired_beyond_masking += r.rollbacks + r.regenerations > 0 ? 1 : 0;
      out.max_regenerations = std::max(out.max_regenerations, r.regenerations);
      out.masked += r.masked;
      out.tokens += r.tokens;
    }
  }
  return out;
}

TEST_F(LoopingModel, AThousandGuardedStreamsHaveNoLongRunsOrLoops) {
  const SpeechLm lm(*backend_, folder_->config.llm, folder_->llm, WeightFormat::F32);
  QualityGuardOptions off;  // the same bounds, nothing enforced
  const Outcome plain = sample_streams(lm, *backend_, off, 200, 100);
  // The model does what it was made for: without the guard, streams hold and loop.
  EXPECT_GT(plain.long_runs, 0);
  EXPECT_GT(plain.long_loops, 0);
  EXPECT_EQ(plain.masked, 0);

  QualityGuardOptions on;
  on.enabled = true;
  const Outcome guarded = sample_streams(lm, *backend_, on, 1000, 125);
  EXPECT_EQ(guarded.long_runs, 0);
  EXPECT_EQ(guarded.long_loops, 0);
  EXPECT_GT(guarded.masked, 0);
  EXPECT_LE(guarded.max_regenerations, 1);
  EXPECT_LE(guarded.repaired_beyond_masking, 10) << "more than 1 % needed a rollback";
  std::printf(
      "guard off: %lld/200 streams with a long run, %lld with a loop; guard on: %lld "
      "masks over %lld tokens, %lld/1000 streams rolled back\n",
      static_cast<long long>(plain.long_runs), static_cast<long long>(plain.long_loops),
      static_cast<long long>(guarded.masked), static_cast<long long>(guarded.tokens),
      static_cast<long long>(guarded.repaired_beyond_masking));
}

struct Chunks {
  std::mutex mutex;
  std::vector<std::vector<float>> audio, mel;
  AudioCallback callback() {
    return [this](const AudioChunk& c) {
      std::lock_guard lock(mutex);
      if (c.samples.empty()) return true;
      audio.emplace_back(c.samples.begin(), c.samples.end());
      mel.emplace_back(c.mel.begin(), c.mel.end());
      return true;
    };
  }
};

// Every chunk the guarded stream delivered is the chunk the final tokens make: what the flow
// was given was never taken back, however often the LM rolled back behind it.
TEST_F(LoopingModel, RollbacksNeverChangeDeliveredAudio) {
  Engine engine(*backend_, *folder_);
  StreamOptions o;
  o.voice = engine.voice(engine.voice_ids().at(0));
  o.flow.first_hop = 15;
  o.vocoder_seed = 3;
  o.reseed_vocoder_per_chunk = true;
  // Plain sampling a little above temperature 1: the model still loops, and a redrawn
  // token often differs from the one rolled back (so a leak would show in the audio).
  o.sampling.method = SamplingMethod::TopKTopP;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1;
  o.sampling.temperature = 1.0;
  o.guard.enabled = true;
  o.guard.max_run = 4;
  o.guard.loop_repeats = 2;
  o.guard.tighten = 1;
  o.guard.rollback_after_masks = 1;  // roll back at every mask
  o.guard.max_rollbacks = 50;
  o.guard.lookahead = 6;
  int64_t rollbacks = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    o.sampling.seed = seed;
    o.input = StreamInput::Text;
    Chunks spoken;
    auto s = engine.open(o, spoken.callback());
    s->push_text_ids(std::vector<int32_t>{5, 17, 33, 41, 52, 60, 71, 80});
    s->finish_input();
    const StreamResult r = s->wait();
    ASSERT_EQ(r.status, StreamStatus::Done) << r.error;
    ASSERT_TRUE(r.quality.enabled);
    rollbacks += r.quality.rollbacks;

    StreamOptions t = o;
    t.input = StreamInput::SpeechTokens;
    Chunks replayed;
    auto again = engine.open(t, replayed.callback());
    again->push_speech_tokens(r.speech_tokens);
    again->finish_input();
    ASSERT_EQ(again->wait().status, StreamStatus::Done);
    ASSERT_EQ(spoken.audio.size(), replayed.audio.size()) << "seed " << seed;
    for (size_t i = 0; i < spoken.audio.size(); ++i) {
      EXPECT_EQ(spoken.mel[i], replayed.mel[i]) << "seed " << seed << ", chunk " << i;
      EXPECT_EQ(spoken.audio[i], replayed.audio[i]) << "seed " << seed << ", chunk " << i;
    }
  }
  EXPECT_GT(rollbacks, 0) << "no rollback happened: the test shows nothing";
}

}  // namespace
}  // namespace cosy
