// Per-stream state for incremental flow streaming. Every attention in the streaming flow
// is chunk-causal and every conv is causal (the look-ahead reads real tokens), so once a
// chunk is complete its layer outputs never change: we keep what later chunks read of it
// (attention keys/values, the last rows each causal conv sees) and compute only new rows.
// A trailing partial chunk is not kept; the next call recomputes it, exactly as the
// official full recompute would.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/device_array.h"
#include "model/layers.h"

namespace cosy {

// Key and value rows [first, rows) of a sequence, [rows - first, width] each, in backend
// memory: fp32, or IEEE half in k16/v16.
struct KvRows {
  DeviceArray<float> k, v;
  DeviceArray<uint16_t> k16, v16;
  int64_t first = 0;  // absolute row of the first row held
  int64_t rows = 0;   // absolute row after the last
  size_t bytes() const { return k.bytes() + v.bytes() + k16.bytes() + v16.bytes(); }
};

// Keys and values of the rows before a stream's committed boundary: first the rows it
// shares read-only with other streams (a voice's cached prompt state: copying a state
// copies the pointer, not the rows), then its own. With a bounded left context
// (num_decoding_left_chunks >= 0) the rows no later query can see are dropped from the
// front: the history then holds rows [first, rows).
struct KvHistory {
  std::shared_ptr<const KvRows> shared;  // rows [shared->first, shared->rows)
  DeviceArray<float> k, v;               // own rows [own_first(), rows)
  DeviceArray<uint16_t> k16, v16;        // own rows, when kept in half precision
  bool half = false;                     // rows kept as IEEE half (chosen before the first row)
  int64_t first = 0;                     // absolute row of the first row held
  int64_t rows = 0;                      // absolute row after the last
  int64_t shared_rows() const { return shared != nullptr ? shared->rows : 0; }
  int64_t own_first() const { return std::max(first, shared_rows()); }
  size_t bytes() const { return k.bytes() + v.bytes() + k16.bytes() + v16.bytes(); }  // own rows
  size_t shared_bytes() const { return shared != nullptr ? shared->bytes() : 0; }
  // Appends n rows of `width` keys and values (rounded to half when `half`).
  void append(Exec& e, const float* keys, const float* values, int64_t n, int64_t width);
  // Moves every row into the shared block.
  void share(Exec& e);
  // Keeps the rows before `keep` (a stream's commit point) of `width` values each.
  void truncate(Exec& e, int64_t keep, int64_t width);
  // Drops the rows before `row` (none that a later query can see); a shared block wholly
  // before it is let go.
  void drop_before(Exec& e, int64_t row, int64_t width);
  // A copy: the shared rows by reference, the own rows copied.
  KvHistory clone(Exec& e) const;
};

struct FlowEncoderState {
  int64_t committed = 0;       // token rows whose outputs are final
  std::vector<KvHistory> kv;   // token-level blocks, then the upsampled ones
  DeviceArray<float> up_tail;  // the up conv's last input rows before 2·committed
  size_t bytes() const;
};

struct FlowEstimatorState {
  bool half_kv = false;                        // attention rows kept in half precision
  int64_t committed = 0;                       // frames whose outputs are final
  std::vector<KvHistory> kv;                   // per transformer block, in run order
  std::vector<DeviceArray<float>> conv_tails;  // per causal conv: its last kernel-1 input rows
  size_t bytes() const;
  // A copy: shared rows by reference, everything else copied.
  FlowEstimatorState clone(Exec& e) const;
};

// Everything one stream's flow keeps between chunks: the encoder, and the estimator for
// each Euler step and CFG half (the inputs differ in each, so the keys do too).
struct FlowStreamState {
  // The estimator's attention rows in half precision: half its memory, and an output
  // that differs slightly from the official one (fp32 is exact).
  bool half_kv = false;
  FlowEncoderState encoder;
  std::vector<FlowEstimatorState> estimator;  // [step * 2 + half]
  int64_t committed_tokens() const { return encoder.committed; }
  size_t bytes() const;         // this stream's own memory
  size_t shared_bytes() const;  // rows it shares (a voice's prompt state)
  // Turns every history into shared rows, so that copies of this state (every stream of
  // the voice) share them instead of copying.
  void share(Exec& e);
  // A copy for another stream: shared rows by reference, everything else copied.
  FlowStreamState clone(Exec& e) const;
};

inline size_t FlowEncoderState::bytes() const {
  size_t b = up_tail.bytes();
  for (const auto& h : kv) b += h.bytes();
  return b;
}

inline size_t FlowEstimatorState::bytes() const {
  size_t b = 0;
  for (const auto& h : kv) b += h.bytes();
  for (const auto& t : conv_tails) b += t.bytes();
  return b;
}

inline size_t FlowStreamState::bytes() const {
  size_t b = encoder.bytes();
  for (const auto& e : estimator) b += e.bytes();
  return b;
}

inline size_t FlowStreamState::shared_bytes() const {
  size_t b = 0;
  for (const auto& h : encoder.kv) b += h.shared_bytes();
  for (const auto& e : estimator)
    for (const auto& h : e.kv) b += h.shared_bytes();
  return b;
}

}  // namespace cosy
