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
  units_.clear();
  for (LmSession* s : sessions) units_.push_back({nullptr, {s}});
  return step_units();
}

LmStepStats LmRunner::step(std::span<LmDecoder* const> decoders) {
  units_.clear();
  for (LmDecoder* d : decoders) {
    Unit u{d, {}};
    for (const auto& h : d->hypotheses()) u.hyps.push_back(h.get());
    units_.push_back(std::move(u));
  }
  return step_units();
}

void LmRunner::release(LmDecoder& decoder) {
  for (const auto& h : decoder.hypotheses()) release(*h);
}

bool LmRunner::Unit::finished() const {
  return decoder != nullptr ? decoder->finished() : hyps.front()->finished();
}

bool LmRunner::Unit::ready() const {
  return decoder != nullptr ? decoder->ready() : hyps.front()->ready();
}

void LmRunner::Unit::fail(const std::string& message) const {
  if (decoder != nullptr) {
    decoder->fail(message);
  } else {
    hyps.front()->fail(message);
  }
}

void LmRunner::release(const Unit& u) {
  for (LmSession* h : u.hyps) release(*h);
}

int64_t LmRunner::rows_to_feed(const LmSession& s) {
  return static_cast<int64_t>(s.replay().size() + s.pending().size()) - s.kv_skip;
}

int64_t LmRunner::blocks_held(const Unit& u) const {
  int64_t blocks = 0;
  for (const LmSession* h : u.hyps) {
    if (h->kv_seq != 0)
      blocks += pool_->sequence_bytes(h->kv_seq) / pool_->geometry().bytes_per_block();
  }
  return blocks;
}

int64_t LmRunner::blocks_to_feed(const Unit& u) const {
  int64_t blocks = 0;
  for (const LmSession* h : u.hyps) blocks += pool_->blocks_needed(h->kv_seq, rows_to_feed(*h));
  // A beam search forks its hypotheses after the step: a copied partial block each.
  if (u.decoder != nullptr && u.decoder->beam_search()) blocks += u.decoder->beam_width();
  return blocks;
}

LmStepStats LmRunner::step_units() {
  LmStepStats stats;
  const int64_t h = lm_.hidden();
  const int64_t max_pos = lm_.config().qwen.max_position_embeddings;
  fed_.clear();
  deferred_.clear();
  int64_t rows = 0, blocks = 0;
  for (Unit& u : units_) {
    if (u.finished()) {
      release(u);
      continue;
    }
    if (!u.ready()) continue;
    std::string problem;
    int64_t n = 0;
    for (LmSession* s : u.hyps) {
      if (s->kv_seq == 0) attach_prefix(*s);
      if (s->kv_seq == 0) s->kv_seq = pool_->create();
      const int64_t rows_of_s = rows_to_feed(*s);
      n += rows_of_s;
      if (pool_->length(s->kv_seq) + rows_of_s > max_pos)
        problem = cat("the stream reached the LM's context of ", max_pos, " positions");
    }
    if (!problem.empty()) {
      u.fail(problem);
      release(u);
      continue;
    }
    const int64_t need = blocks_to_feed(u);
    if (blocks + need > pool_->free_blocks()) {
      // More than the whole pool even alone: fail it rather than wait forever.
      if (blocks_held(u) + need > pool_->geometry().blocks) {
        u.fail(cat("the stream needs ", blocks_held(u) + need, " KV blocks; the pool has ",
                   pool_->geometry().blocks));
        release(u);
      } else {
        ++stats.deferred;
        deferred_.push_back(&u);
      }
      continue;
    }
    blocks += need;
    rows += n;
    fed_.push_back(&u);
  }
  if (fed_.empty() && !deferred_.empty()) {
    // Every ready stream waits for blocks other streams hold: let the cached voice
    // prefixes go, then evict from the back until the first waiting stream fits, then
    // feed it.
    drop_voice_prefixes();
    Unit* first = deferred_.front();
    const auto fits = [&] { return blocks_to_feed(*first) <= pool_->free_blocks(); };
    for (auto it = units_.rbegin(); it != units_.rend() && !fits(); ++it) {
      Unit& victim = *it;
      if (&victim == first || victim.finished() || blocks_held(victim) == 0) continue;
      for (LmSession* s : victim.hyps) {
        release(*s);
        s->evict();
      }
      ++stats.evicted;
    }
    if (fits()) {
      rows = 0;
      for (const LmSession* s : first->hyps) rows += rows_to_feed(*s);
      fed_.push_back(first);
      --stats.deferred;
    }
  }
  if (fed_.empty()) return stats;

  Exec e(backend_, *stream_);
  int64_t out_rows = 0;
  for (const Unit* u : fed_) out_rows += static_cast<int64_t>(u->hyps.size());
  inputs_.resize(backend_, static_cast<size_t>(rows * h));
  hidden_.resize(backend_, static_cast<size_t>(out_rows * h));
  chunks_.clear();
  int64_t r = 0;
  for (const Unit* u : fed_) {
    for (LmSession* s : u->hyps) {
      const auto replayed = static_cast<int64_t>(s->replay().size());
      const int64_t n = rows_to_feed(*s);
      if (replayed > 0) lm_.embed(e, s->replay(), inputs_.data() + r * h);
      lm_.embed(e, s->pending().subspan(static_cast<size_t>(s->kv_skip)),
                inputs_.data() + (r + replayed) * h);
      stats.prefix_rows += s->kv_skip;
      chunks_.push_back({s->kv_seq, inputs_.data() + r * h, n,
                         hidden_.data() + static_cast<int64_t>(chunks_.size()) * h, nullptr});
      r += n;
    }
  }
  const int64_t v = lm_.vocab().size();
  try {
    lm_.backbone().forward(e, *pool_, chunks_, ws_);
    logits_.resize(backend_, static_cast<size_t>(out_rows * v));
    lm_.logits(e, hidden_.data(), out_rows, logits_.data());
    e.k.softmax(e.s, logits_.data(), out_rows, v, true);
    // One transfer for every stream of the step: the samplers run on the host.
    logp_.resize(logits_.size());
    backend_.copy(e.s, logp_.data(), logits_.data(), logp_.size() * sizeof(float));
    stream_->synchronize();
  } catch (const std::exception& ex) {
    // Nothing was committed; the streams of this step cannot go on.
    for (const Unit* u : fed_) {
      u->fail(ex.what());
      release(*u);
    }
    return stats;
  }
  int64_t row = 0;
  for (Unit* u : fed_) {
    const float* first_row = logp_.data() + row * v;
    row += static_cast<int64_t>(u->hyps.size());
    for (LmSession* s : u->hyps) {
      // Before advancing: a fresh session still reports the voice prefix it just fed. One
      // that started from a cached prefix has nothing new to keep.
      if (s->kv_skip == 0) keep_prefix(*s);
      s->kv_skip = 0;  // from now on the sequence holds what the session fed
    }
    try {
      advance(*u, {first_row, static_cast<size_t>(v * static_cast<int64_t>(u->hyps.size()))});
    } catch (const std::exception& ex) {
      u->fail(ex.what());
    }
    if (u->decoder != nullptr) {  // the hypotheses it fed may be gone
      u->hyps.clear();
      for (const auto& s : u->decoder->hypotheses()) u->hyps.push_back(s.get());
    }
    if (u->finished()) release(*u);
  }
  stats.sessions = static_cast<int64_t>(fed_.size());
  stats.outputs = out_rows;
  stats.rows = rows;
  return stats;
}

void LmRunner::advance(Unit& u, std::span<const float> logp) {
  const auto v = static_cast<size_t>(lm_.vocab().size());
  if (u.decoder == nullptr) {
    LmSession& s = *u.hyps.front();
    s.advance(logp);
    truncate_to_fed(s);
    return;
  }
  std::vector<std::span<const float>> rows;
  std::vector<PagedKvPool::SeqId> before;
  for (size_t i = 0; i < u.hyps.size(); ++i) {
    rows.push_back(logp.subspan(i * v, v));
    before.push_back(u.hyps[i]->kv_seq);
  }
  std::vector<int> parents;
  try {
    parents = u.decoder->advance(rows);
  } catch (...) {
    // The decoder failed (and holds no half-made hypotheses): its rows go back.
    for (PagedKvPool::SeqId seq : before) {
      if (seq != 0) pool_->release(seq);
    }
    for (const auto& s : u.decoder->hypotheses()) s->kv_seq = 0;
    throw;
  }
  // Each hypothesis now live holds its parent's rows: the first continuation of a parent
  // takes its sequence, the others fork it (full blocks shared, the last one copied).
  std::vector<bool> taken(before.size(), false);
  const auto live = u.decoder->hypotheses();
  for (const auto& s : live) s->kv_seq = 0;  // copies still name their parent's sequence
  try {
    for (size_t i = 0; i < parents.size(); ++i) {
      const auto p = static_cast<size_t>(parents[i]);
      if (!taken[p]) {
        live[i]->kv_seq = before[p];
        taken[p] = true;
      } else {
        live[i]->kv_seq = pool_->fork(*stream_, before[p], pool_->length(before[p]));
      }
    }
  } catch (...) {
    // No block for a fork: every sequence of this search goes back, each once.
    std::vector<PagedKvPool::SeqId> all(before);
    for (const auto& s : live) all.push_back(s->kv_seq);
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    for (PagedKvPool::SeqId seq : all) {
      if (seq != 0) pool_->release(seq);
    }
    for (const auto& s : live) s->kv_seq = 0;
    throw;
  }
  for (size_t p = 0; p < before.size(); ++p) {
    if (!taken[p] && before[p] != 0) pool_->release(before[p]);
  }
  for (const auto& s : live) truncate_to_fed(*s);
}

void LmRunner::truncate_to_fed(LmSession& s) {
  // The quality guard rolled the stream back: its cache forgets those positions too.
  if (!s.finished() && s.kv_seq != 0 && pool_->length(s.kv_seq) > s.fed_positions())
    pool_->truncate(*stream_, s.kv_seq, s.fed_positions());
}

}  // namespace cosy
