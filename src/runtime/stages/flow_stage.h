// The engine's flow stage (speech tokens → mel), whatever the model family. A FlowStage
// holds the weights, shared read-only by every stream; it opens a FlowUnit per segment,
// which holds that segment's state alone. One run() is one batched flow call over many
// streams' units: the scheduler sees only this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/flow/flow_state.h"
#include "model/flow/flow_stream.h"  // FlowStreamOptions

namespace cosy {

struct VoicePrompt;
class UncondFirstPassCache;

class FlowUnit {
 public:
  virtual ~FlowUnit() = default;
  virtual void push_tokens(std::span<const int32_t> tokens) = 0;
  virtual void finish() = 0;       // no more tokens will come
  virtual bool ready() const = 0;  // a call can run now
  virtual bool done() const = 0;   // every frame has been emitted
  // Tokens still to come before the next call can run (0 when ready or finished).
  virtual int64_t tokens_missing() const = 0;
  // The next call's work in FLOPs as it will run (what the scheduler plans with).
  virtual double next_call_flops() const = 0;
  // Useful work so far: a single non-streaming call over the prompt and the tokens whose
  // frames were emitted (what streaming's extra work is measured against).
  virtual double flops_done() const = 0;
  virtual size_t state_bytes() const = 0;  // this segment's own flow state
  // The unit started from its voice's cached prompt state.
  virtual bool started_from_prompt_state() const { return false; }
};

struct FlowWork {
  FlowUnit* unit = nullptr;
  std::vector<float>* out = nullptr;  // the call's new frames are appended, [frames, bins]
};

class FlowStage {
 public:
  virtual ~FlowStage() = default;
  virtual const FlowConfig& config() const = 0;
  int64_t mel_bins() const { return config().output_size; }
  // An Error when the voice's prompt does not fit this flow.
  void check_voice(const VoicePrompt& voice) const;

  // A segment's flow: streaming chunk by chunk on `options`' schedule, or one full call once
  // the tokens end. `prompt_state` (from prompt_state(), or null) and `uncond_cache` (may
  // be null) are shortcuts with the same output; a family without them ignores them. The
  // voice must outlive the unit.
  virtual std::unique_ptr<FlowUnit> open(const VoicePrompt& voice, bool streaming,
                                         const FlowStreamOptions& options,
                                         const FlowStreamState* prompt_state,
                                         UncondFirstPassCache* uncond_cache) const = 0;
  // The voice's prompt state for incremental streaming (its complete chunks, computed
  // once, shared read-only by its streams); null where the family keeps none
  // (has_prompt_state() false).
  virtual bool has_prompt_state() const { return false; }
  virtual std::shared_ptr<const FlowStreamState> prompt_state(const VoicePrompt& voice,
                                                              bool half_state) const;
  // One batched call: each unit's next call (units not ready are skipped). The units must
  // come from this stage's open(). A request the model refuses is an Error before
  // anything is computed, so the units can be run again one by one.
  virtual void run(std::span<FlowWork> work) const = 0;
};

}  // namespace cosy
