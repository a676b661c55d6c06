#include "runtime/lm_runner.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

LmRunner::LmRunner(Backend& backend, const SpeechLm& lm, const LmRunnerOptions& options)
    : options_(options), backend_(backend), lm_(lm), stream_(backend.create_stream()) {
  if (options.voice_prefixes < 0) fail("lm runner: voice_prefixes must be >= 0");
  pool_ = std::make_unique<PagedKvPool>(
      backend, lm.backbone().kv_geometry(options.kv_blocks, options.kv_block_size));
}

LmRunner::~LmRunner() = default;

void LmRunner::release(LmSession& session) {
  if (session.kv_seq != 0) pool_->release(session.kv_seq);
  session.kv_seq = 0;
  session.kv_skip = 0;
}

std::list<LmRunner::VoicePrefix>::iterator LmRunner::find_prefix(std::span<const LmInput> inputs) {
  return std::find_if(prefixes_.begin(), prefixes_.end(), [&](const VoicePrefix& v) {
    return std::equal(inputs.begin(), inputs.end(), v.inputs.begin(), v.inputs.end());
  });
}

void LmRunner::attach_prefix(LmSession& s) {
  const int64_t p = s.voice_prefix();
  if (p <= 0 || static_cast<int64_t>(s.pending().size()) < p) return;
  const auto it = find_prefix(s.pending().first(static_cast<size_t>(p)));
  if (it == prefixes_.end()) return;
  try {
    s.kv_seq = pool_->fork(*stream_, it->seq, p);
  } catch (const Error&) {
    return;  // no block for the partial copy: compute the prefix instead
  }
  s.kv_skip = p;
  prefixes_.splice(prefixes_.begin(), prefixes_, it);
}

void LmRunner::keep_prefix(const LmSession& s) {
  // A prefix of a few positions (no prompt text) is not worth a pool block.
  constexpr int64_t kMinRows = 4;
  const int64_t p = s.voice_prefix();
  if (options_.voice_prefixes == 0 || p < kMinRows || static_cast<int64_t>(s.pending().size()) < p)
    return;
  const auto inputs = s.pending().first(static_cast<size_t>(p));
  if (find_prefix(inputs) != prefixes_.end()) return;
  PagedKvPool::SeqId seq = 0;
  try {
    seq = pool_->fork(*stream_, s.kv_seq, p);
  } catch (const Error&) {
    return;  // the pool is short: not worth a block
  }
  prefixes_.push_front({{inputs.begin(), inputs.end()}, seq});
  while (static_cast<int64_t>(prefixes_.size()) > options_.voice_prefixes) {
    pool_->release(prefixes_.back().seq);
    prefixes_.pop_back();
  }
}

void LmRunner::drop_voice_prefixes() {
  for (const VoicePrefix& v : prefixes_) pool_->release(v.seq);
  prefixes_.clear();
}

LmStepStats LmRunner::step(std::span<LmSession* const> sessions) {
  LmStepStats stats;
  const int64_t h = lm_.hidden();
  const int64_t max_pos = lm_.config().qwen.max_position_embeddings;
  fed_.clear();
  deferred_.clear();
  const auto to_feed = [](const LmSession& s) {
    return static_cast<int64_t>(s.replay().size() + s.pending().size()) - s.kv_skip;
  };
  const auto held = [&](const LmSession& s) {
    return s.kv_seq != 0 ? pool_->sequence_bytes(s.kv_seq) / pool_->geometry().bytes_per_block()
                         : 0;
  };
  int64_t rows = 0, blocks = 0;
  for (LmSession* s : sessions) {
    if (s->finished()) {
      release(*s);
      continue;
    }
    if (!s->ready()) continue;
    if (s->kv_seq == 0) attach_prefix(*s);
    if (s->kv_seq == 0) s->kv_seq = pool_->create();
    const int64_t n = to_feed(*s);
    if (pool_->length(s->kv_seq) + n > max_pos) {
      s->fail(cat("the stream reached the LM's context of ", max_pos, " positions"));
      release(*s);
      continue;
    }
    const int64_t need = pool_->blocks_needed(s->kv_seq, n);
    if (blocks + need > pool_->free_blocks()) {
      // More than the whole pool even alone: fail it rather than wait forever.
      if (held(*s) + need > pool_->geometry().blocks) {
        s->fail(cat("the stream needs ", held(*s) + need, " KV blocks; the pool has ",
                    pool_->geometry().blocks));
        release(*s);
      } else {
        ++stats.deferred;
        deferred_.push_back(s);
      }
      continue;
    }
    blocks += need;
    rows += n;
    fed_.push_back(s);
  }
  if (fed_.empty() && !deferred_.empty()) {
    // Every ready stream waits for blocks other streams hold: let the cached voice
    // prefixes go, then evict from the back until the first waiting stream fits, then
    // feed it.
    drop_voice_prefixes();
    LmSession* first = deferred_.front();
    const auto fits = [&] {
      return pool_->blocks_needed(first->kv_seq, to_feed(*first)) <= pool_->free_blocks();
    };
    for (auto it = sessions.rbegin(); it != sessions.rend() && !fits(); ++it) {
      LmSession* victim = *it;
      if (victim == first || victim->finished() || held(*victim) == 0) continue;
      release(*victim);
      victim->evict();
      ++stats.evicted;
    }
    if (fits()) {
      rows = to_feed(*first);
      fed_.push_back(first);
      --stats.deferred;
    }
  }
  if (fed_.empty()) return stats;

  Exec e(backend_, *stream_);
  inputs_.resize(backend_, static_cast<size_t>(rows * h));
  hidden_.resize(backend_, fed_.size() * static_cast<size_t>(h));
  chunks_.clear();
  int64_t r = 0;
  for (size_t i = 0; i < fed_.size(); ++i) {
    LmSession* s = fed_[i];
    const auto replayed = static_cast<int64_t>(s->replay().size());
    const int64_t n = to_feed(*s);
    if (replayed > 0) lm_.embed(e, s->replay(), inputs_.data() + r * h);
    lm_.embed(e, s->pending().subspan(static_cast<size_t>(s->kv_skip)),
              inputs_.data() + (r + replayed) * h);
    stats.prefix_rows += s->kv_skip;
    chunks_.push_back({s->kv_seq, inputs_.data() + r * h, n,
                       hidden_.data() + static_cast<int64_t>(i) * h, nullptr});
    r += n;
  }
  const int64_t v = lm_.vocab().size();
  try {
    lm_.backbone().forward(e, *pool_, chunks_, ws_);
    const auto rows_out = static_cast<int64_t>(fed_.size());
    logits_.resize(backend_, static_cast<size_t>(rows_out * v));
    lm_.logits(e, hidden_.data(), rows_out, logits_.data());
    e.k.softmax(e.s, logits_.data(), rows_out, v, true);
    // One transfer for every stream of the step: the samplers run on the host.
    logp_.resize(logits_.size());
    backend_.copy(e.s, logp_.data(), logits_.data(), logp_.size() * sizeof(float));
    stream_->synchronize();
  } catch (const std::exception& ex) {
    // Nothing was committed; the streams of this step cannot go on.
    for (LmSession* s : fed_) {
      s->fail(ex.what());
      release(*s);
    }
    return stats;
  }
  for (size_t i = 0; i < fed_.size(); ++i) {
    LmSession* s = fed_[i];
    // Before advance(): a fresh session still reports the voice prefix it just fed. One
    // that started from a cached prefix has nothing new to keep.
    if (s->kv_skip == 0) keep_prefix(*s);
    s->kv_skip = 0;  // from now on the sequence holds what the session fed
    try {
      s->advance({logp_.data() + static_cast<int64_t>(i) * v, static_cast<size_t>(v)});
      // The quality guard rolled the stream back: its cache forgets those positions too.
      if (!s->finished() && pool_->length(s->kv_seq) > s->fed_positions())
        pool_->truncate(*stream_, s->kv_seq, s->fed_positions());
    } catch (const std::exception& ex) {
      s->fail(ex.what());
    }
    if (s->finished()) release(*s);
  }
  stats.sessions = static_cast<int64_t>(fed_.size());
  stats.rows = rows;
  return stats;
}

}  // namespace cosy
