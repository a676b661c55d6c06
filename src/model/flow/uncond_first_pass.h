// The unconditional (CFG) half of a streaming chunk's first Euler step, computed once and
// reused. That half sees the noise table alone: t = 0, and its mu, cond and spks are zero.
// So its velocity over a chunk, and the estimator state it leaves, depend only on which
// frames the chunk covers (where the half's state stood before it, where the chunk ends,
// which frames it keeps), never on the voice or the text. A stream whose chunk matches a
// cached one takes both from the cache and runs 19 of its 20 estimator passes.
//
// FlowStream asks for it at a stream's first chunk only: every stream of a voice (same
// prompt length) and first hop has the same first chunk, so one entry serves them all,
// and it is the chunk whose latency users wait on. Later chunks would need an entry per
// chunk, each holding the half's attention rows for every frame before it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "core/device_array.h"
#include "model/flow/flow_state.h"

namespace cosy {

// Which chunk an entry answers.
struct UncondChunk {
  const void* model = nullptr;  // the FlowModel that computed it
  // The half's state held frames [0, from) before the chunk; the chunk computed frames
  // [from, to) and kept those before `commit`.
  int64_t from = 0, to = 0, commit = 0;
  bool half_kv = false;  // the state's precision
  bool operator==(const UncondChunk&) const = default;
};

struct UncondFirstPass {
  UncondChunk chunk;
  DeviceArray<float> velocity;  // [chunk.to - chunk.from, mel bins]
  FlowEstimatorState state;     // the half's state after the chunk; attention rows shared
  size_t bytes() const { return velocity.bytes() + state.bytes() + shared_bytes(); }
  size_t shared_bytes() const;
};

// Entries of any FlowModel (each is found only by its own). Thread-safe; the most recently
// used `max_entries` are kept.
class UncondFirstPassCache {
 public:
  explicit UncondFirstPassCache(int64_t max_entries = 4);
  // The entry for this chunk, or null (counted as a miss; the caller computes and inserts).
  std::shared_ptr<const UncondFirstPass> find(const UncondChunk& chunk) const;
  void insert(std::shared_ptr<const UncondFirstPass> entry);
  int64_t hits() const;
  int64_t misses() const;
  int64_t entries() const;
  size_t bytes() const;  // held by the entries (their shared rows included)

 private:
  int64_t max_entries_;
  mutable std::mutex mutex_;
  mutable std::list<std::shared_ptr<const UncondFirstPass>> entries_;  // most recent first
  mutable int64_t hits_ = 0, misses_ = 0;
};

}  // namespace cosy
