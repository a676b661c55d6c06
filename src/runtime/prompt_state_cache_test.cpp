#include "runtime/prompt_state_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "runtime/voice_prompt.h"

namespace cosy {
namespace {

using namespace std::chrono_literals;

// A computation the test lets finish: each one waits until the gate opens, and marks its
// state with the voice's first prompt token and how many computations came before it.
class GatedCompute {
 public:
  explicit GatedCompute(bool open = false) : open_(open) {}

  PromptStateCache::Compute fn() {
    return [this](const VoicePrompt& voice, bool half_state) {
      std::unique_lock lock(mutex_);
      ++started_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      if (!voice.speech.empty() && voice.speech[0] < 0) fail("a prompt the flow refuses");
      auto s = std::make_shared<FlowStreamState>();
      s->half_kv = half_state;
      s->encoder.committed = voice.speech.empty() ? 0 : voice.speech[0];
      s->estimator.resize(static_cast<size_t>(computed_++));  // which computation it was
      return std::shared_ptr<const FlowStreamState>(std::move(s));
    };
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Blocks until `n` computations have started (bounded: a stuck worker fails the test).
  bool wait_started(int n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 10s, [&] { return started_ >= n; });
  }
  int started() {
    std::lock_guard lock(mutex_);
    return started_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_;
  int started_ = 0;
  int computed_ = 0;
};

std::shared_ptr<const VoicePrompt> voice(int32_t first_token) {
  auto v = std::make_shared<VoicePrompt>();
  v->speech = {first_token, 1, 2};
  return v;
}

bool ready(const PendingPromptState& s) { return s.wait_for(0s) == std::future_status::ready; }

// The requester goes on while the worker computes, and however many streams ask for a
// voice, its state is computed once.
TEST(PromptStateCache, ComputesEachVoiceOnceOffTheRequestingThread) {
  GatedCompute gate;
  std::atomic<int> finished{0};
  PromptStateCache cache(4, gate.fn(), [&] { ++finished; });
  const auto a = voice(7), b = voice(9);
  const PendingPromptState first = cache.request(a, false, 1);
  ASSERT_TRUE(gate.wait_started(1));
  EXPECT_FALSE(ready(first));  // request() returned while the computation waits
  const PendingPromptState again = cache.request(a, false, 2);
  const PendingPromptState other = cache.request(b, false, 3);
  EXPECT_FALSE(ready(again));
  EXPECT_TRUE(cache.take_finished().empty());
  gate.open();
  EXPECT_EQ(first.get()->committed_tokens(), 7);
  EXPECT_EQ(again.get(), first.get());  // the same state, not a second computation
  EXPECT_EQ(other.get()->committed_tokens(), 9);
  EXPECT_EQ(gate.started(), 2);
  // A later request of a kept voice is ready at once.
  EXPECT_TRUE(ready(cache.request(a, false, 4)));
  EXPECT_EQ(gate.started(), 2);
  for (int i = 0; i < 1000 && finished.load() < 2; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(finished.load(), 2);
  const auto done = cache.take_finished();
  ASSERT_EQ(done.size(), 2U);
  EXPECT_EQ(done[0].requested_by, 1);
  EXPECT_EQ(done[1].requested_by, 3);
  EXPECT_TRUE(done[0].error.empty());
  EXPECT_LE(done[0].begin, done[0].end);
  EXPECT_TRUE(cache.take_finished().empty());
}

// A state is kept per voice and precision; a voice derived from another (cross-lingual,
// instruct) shares its base's.
TEST(PromptStateCache, KeysByFlowIdentityAndPrecision) {
  GatedCompute gate(true);
  PromptStateCache cache(4, gate.fn(), {});
  const auto base = voice(5);
  const auto derived = cross_lingual(base);
  const auto full = cache.request(base, false, 1).get();
  EXPECT_EQ(cache.request(derived, false, 2).get(), full);
  const auto half = cache.request(derived, true, 3).get();
  EXPECT_NE(half, full);
  EXPECT_TRUE(half->half_kv);
  EXPECT_EQ(gate.started(), 2);
  EXPECT_EQ(cache.voices(), 2U);
}

// The most recently requested voices are kept; a dropped one is computed again when asked.
TEST(PromptStateCache, KeepsTheMostRecentVoices) {
  GatedCompute gate(true);
  PromptStateCache cache(2, gate.fn(), {});
  const auto a = voice(1), b = voice(2), c = voice(3);
  const auto first = cache.request(a, false, 1).get();
  cache.request(b, false, 2).get();
  cache.request(a, false, 3).get();  // a is now the most recent: b goes next
  cache.request(c, false, 4).get();
  EXPECT_EQ(cache.voices(), 2U);
  EXPECT_EQ(gate.started(), 3);
  EXPECT_EQ(cache.request(a, false, 5).get(), first);  // kept
  EXPECT_EQ(gate.started(), 3);
  cache.request(b, false, 6).get();  // dropped: computed again
  EXPECT_EQ(gate.started(), 4);
}

// A state still computing is not dropped to make room: its streams wait for it.
TEST(PromptStateCache, KeepsAStateStillComputing) {
  GatedCompute gate;
  PromptStateCache cache(1, gate.fn(), {});
  const auto a = voice(1), b = voice(2);
  const auto first = cache.request(a, false, 1);
  const auto second = cache.request(b, false, 2);
  EXPECT_EQ(cache.voices(), 2U);  // over capacity while both compute
  gate.open();
  first.get();
  second.get();
  cache.request(b, false, 3).get();  // b again: a, finished, now goes
  EXPECT_EQ(cache.voices(), 1U);
  EXPECT_EQ(gate.started(), 2);
}

// A failed computation fails the streams that asked for it with its message, and the next
// request tries again.
TEST(PromptStateCache, AFailureReachesItsStreamsAndIsRetried) {
  GatedCompute gate(true);
  PromptStateCache cache(4, gate.fn(), {});
  const auto bad = voice(-1);
  const auto failed = cache.request(bad, false, 1);
  try {
    failed.get();
    FAIL() << "the failure did not reach the stream";
  } catch (const std::exception& ex) {
    EXPECT_NE(std::string(ex.what()).find("a prompt the flow refuses"), std::string::npos);
  }
  EXPECT_THROW(cache.request(bad, false, 2).get(), Error);
  EXPECT_EQ(gate.started(), 2);
  std::vector<PromptStateCache::Computed> done;
  for (int i = 0; i < 1000 && done.size() < 2; ++i) {
    for (auto& c : cache.take_finished()) done.push_back(std::move(c));
    if (done.size() < 2) std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(done.size(), 2U);
  EXPECT_NE(done[0].error.find("a prompt the flow refuses"), std::string::npos);
}

// Shutting down waits for the computation in progress; those still queued fail with a
// message instead of leaving their streams waiting.
TEST(PromptStateCache, ShutdownFinishesTheCurrentAndFailsTheQueued) {
  GatedCompute gate;
  PendingPromptState running, queued;
  std::thread opener;
  {
    PromptStateCache cache(4, gate.fn(), {});
    running = cache.request(voice(1), false, 1);
    queued = cache.request(voice(2), false, 2);
    ASSERT_TRUE(gate.wait_started(1));
    opener = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      gate.open();
    });
  }  // the destructor returns once the running computation is done
  opener.join();
  ASSERT_TRUE(ready(running));
  EXPECT_EQ(running.get()->committed_tokens(), 1);
  ASSERT_TRUE(ready(queued));
  try {
    queued.get();
    FAIL() << "a queued state was reported as computed";
  } catch (const Error& ex) {
    EXPECT_NE(std::string(ex.what()).find("shutting down"), std::string::npos);
  }
  EXPECT_EQ(gate.started(), 1);
}

TEST(PromptStateCache, RefusesNoCapacityOrNoComputation) {
  GatedCompute gate(true);
  EXPECT_THROW(PromptStateCache(0, gate.fn(), {}), Error);
  EXPECT_THROW(PromptStateCache(1, {}, {}), Error);
}

}  // namespace
}  // namespace cosy
