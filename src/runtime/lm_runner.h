// Runs the speech LM for many streams at once. One step() feeds every ready session's
// pending inputs in a single batched forward: new streams' prompts (prefill) and other
// streams' one-token decodes share each GEMM, every stream at its own length (continuous
// batching); then the decoder head and log-softmax run on one row per stream, and each
// session samples its own next token with its own generator.
//
// The runner owns the paged KV pool: a session gets a sequence on its first step, and a
// finished, failed or cancelled session's blocks go back to the pool at once. Streams
// waiting for text are simply not in the step. A unistream prompt starts with sos and the
// voice's prompt text, the same for every stream of the voice: once a stream has computed
// those rows, the runner keeps a fork of them (shared blocks), and later streams of the
// voice start from a fork of that instead of feeding them again. Not thread-safe: one
// scheduler thread drives it (sessions are handed over by that thread).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <vector>

#include "core/kv_pool.h"
#include "model/lm/speech_lm.h"
#include "runtime/lm_decoder.h"
#include "runtime/lm_session.h"

namespace cosy {

struct LmRunnerOptions {
  int64_t kv_blocks = 4096;  // pool capacity, in blocks of block_size positions
  int64_t kv_block_size = 16;
  // Voice prefixes (sos + prompt text) whose KV rows are kept after a stream computed
  // them, so later streams of the voice start from a fork of them; 0: off. They hold a
  // few blocks each and are the first to go when the pool runs short.
  int64_t voice_prefixes = 8;
};

struct LmStepStats {
  int64_t sessions = 0;     // sessions (decoders) fed this step
  int64_t outputs = 0;      // log-probability rows: one per session, or per beam hypothesis
  int64_t rows = 0;         // positions fed (prefill + decode)
  int64_t deferred = 0;     // ready but left for a later step (KV pool full)
  int64_t evicted = 0;      // sessions whose KV was dropped so that others could go on
  int64_t prefix_rows = 0;  // positions not fed because a cached voice prefix held them
};

class LmRunner {
 public:
  LmRunner(Backend& backend, const SpeechLm& lm, const LmRunnerOptions& options = {});
  ~LmRunner();
  LmRunner(const LmRunner&) = delete;
  LmRunner& operator=(const LmRunner&) = delete;

  // One batched step over the ready sessions among `sessions` (others are skipped; pass
  // every live session, ready or not, so that they can be evicted). A session whose
  // request cannot be served (context full, more than the whole pool) fails with a
  // message; the others go on. When the pool is full and no ready session fits, the
  // sessions latest in `sessions` are evicted (they recompute their cache later, with the
  // same result) until the first waiting one fits: a full pool never stalls every stream.
  LmStepStats step(std::span<LmSession* const> sessions);
  // The same over decoders: a beam search feeds one row per hypothesis, and is admitted,
  // deferred or evicted as a whole.
  LmStepStats step(std::span<LmDecoder* const> decoders);
  // Returns a session's (every hypothesis's) KV blocks (cancel, or a caller done with it
  // early). Idempotent.
  void release(LmSession& session);
  void release(LmDecoder& decoder);

  const PagedKvPool& pool() const { return *pool_; }
  // The cached voice prefixes: how many (each one pool sequence), and letting them go.
  int64_t cached_prefixes() const { return static_cast<int64_t>(prefixes_.size()); }
  void drop_voice_prefixes();
  const SpeechLm& lm() const { return lm_; }

 private:
  // What one step admits or defers together: a session, or a decoder's hypotheses.
  struct Unit {
    LmDecoder* decoder = nullptr;
    std::vector<LmSession*> hyps;
    bool finished() const;
    bool ready() const;
    void fail(const std::string& message) const;
  };
  LmStepStats step_units();
  void release(const Unit& u);
  static int64_t rows_to_feed(const LmSession& s);
  int64_t blocks_held(const Unit& u) const;
  int64_t blocks_to_feed(const Unit& u) const;
  // Hands a fed unit its log-probabilities (one row per hypothesis), then fits the KV
  // sequences to what the hypotheses hold now (forks, releases, a rollback's truncation).
  void advance(Unit& u, std::span<const float> logp);
  void truncate_to_fed(LmSession& s);

  struct VoicePrefix {
    std::vector<LmInput> inputs;
    PagedKvPool::SeqId seq = 0;  // holds exactly inputs.size() rows
  };
  std::list<VoicePrefix>::iterator find_prefix(std::span<const LmInput> inputs);
  // A fresh session whose voice prefix is cached starts from a fork of it.
  void attach_prefix(LmSession& s);
  // After a fresh session's first step: keeps a fork of the voice prefix it computed.
  void keep_prefix(const LmSession& s);

  LmRunnerOptions options_;
  std::list<VoicePrefix> prefixes_;  // most recently used first
  Backend& backend_;
  const SpeechLm& lm_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<PagedKvPool> pool_;
  Qwen2Workspace ws_;
  DeviceArray<float> inputs_, hidden_, logits_;  // backend memory
  std::vector<float> logp_;  // the step's log-probabilities, on the host for the samplers
  std::vector<Qwen2Chunk> chunks_;
  std::vector<Unit> units_;
  std::vector<Unit*> fed_, deferred_;  // into units_
};

}  // namespace cosy
