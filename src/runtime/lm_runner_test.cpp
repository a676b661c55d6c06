// The batched LM step on a backend whose memory the host cannot touch: it runs, and once
// its buffers have grown to the batch it allocates no backend memory per step.
#include "runtime/lm_runner.h"

#include <gtest/gtest.h>

#include "kernels/cpu_backend.h"
#include "kernels/guarded_backend.h"
#include "model/model_folder.h"
#include "model/test_model_util.h"

namespace cosy {
namespace {

TEST(LmRunner, SteadyDecodeStepsAllocateNoBackendMemory) {
  LoadOptions load;
  load.flow = load.hift = load.voices = false;
  const ModelFolder folder =
      load_model_folder(testing::write_small_model("lm_runner_steady"), load);
  auto backend = create_guarded_backend(cpu::create_cpu_backend(1));
  const SpeechLm lm(*backend, folder.config.llm, folder.llm, WeightFormat::F32);
  LmRunner runner(*backend, lm);
  const LmSessionLimits limits = LmSessionLimits::of(lm);
  std::vector<std::unique_ptr<LmSession>> sessions;
  for (int i = 0; i < 3; ++i) {
    LmSessionOptions o;
    o.prompt_text = {1, 2, 3};
    o.prompt_speech = {4, 5, 6, 7};
    o.text = {8, 9, int32_t(10 + i)};
    o.sampling.method = SamplingMethod::Greedy;
    o.fixed_tokens = 40;
    sessions.push_back(std::make_unique<LmSession>(limits, o));
  }
  std::vector<LmSession*> batch;
  for (auto& s : sessions) batch.push_back(s.get());
  // Prefill and the first decode steps size the buffers; then 30 decode steps of the same
  // three streams must reuse them.
  for (int i = 0; i < 3; ++i) runner.step(batch);
  const GuardedMemoryStats before = guarded_memory_stats(*backend);
  for (int i = 0; i < 30; ++i) {
    const LmStepStats st = runner.step(batch);
    ASSERT_EQ(st.sessions, 3) << "step " << i;
    ASSERT_EQ(st.rows, 3) << "step " << i;
  }
  const GuardedMemoryStats after = guarded_memory_stats(*backend);
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_EQ(after.live, before.live);
  for (auto& s : sessions) EXPECT_EQ(int64_t(s->tokens().size()), 33);
}

}  // namespace
}  // namespace cosy
