// Per-stream state for incremental flow streaming. Every attention in the streaming flow
// is chunk-causal and every conv is causal (the look-ahead reads real tokens), so once a
// chunk is complete its layer outputs never change: we keep what later chunks read of it
// (attention keys/values, the last rows each causal conv sees) and compute only new rows.
// A trailing partial chunk is not kept; the next call recomputes it, exactly as the
// official full recompute would.
#pragma once

#include <cstdint>
#include <vector>

namespace cosy {

// Keys and values of the rows before a stream's committed boundary, [rows, width].
struct KvHistory {
  std::vector<float> k, v;
  int64_t rows = 0;
  size_t bytes() const { return (k.capacity() + v.capacity()) * sizeof(float); }
};

struct FlowEncoderState {
  int64_t committed = 0;       // token rows whose outputs are final
  std::vector<KvHistory> kv;   // token-level blocks, then the upsampled ones
  std::vector<float> up_tail;  // the up conv's last input rows before 2·committed
  size_t bytes() const;
};

struct FlowEstimatorState {
  int64_t committed = 0;                       // frames whose outputs are final
  std::vector<KvHistory> kv;                   // per transformer block, in run order
  std::vector<std::vector<float>> conv_tails;  // per causal conv: its last kernel-1 input rows
  size_t bytes() const;
};

// Everything one stream's flow keeps between chunks: the encoder, and the estimator for
// each Euler step and CFG half (the inputs differ in each, so the keys do too).
struct FlowStreamState {
  FlowEncoderState encoder;
  std::vector<FlowEstimatorState> estimator;  // [step * 2 + half]
  int64_t committed_tokens() const { return encoder.committed; }
  size_t bytes() const;
};

inline size_t FlowEncoderState::bytes() const {
  size_t b = up_tail.capacity() * sizeof(float);
  for (const auto& h : kv) b += h.bytes();
  return b;
}

inline size_t FlowEstimatorState::bytes() const {
  size_t b = 0;
  for (const auto& h : kv) b += h.bytes();
  for (const auto& t : conv_tails) b += t.capacity() * sizeof(float);
  return b;
}

inline size_t FlowStreamState::bytes() const {
  size_t b = encoder.bytes();
  for (const auto& e : estimator) b += e.bytes();
  return b;
}

}  // namespace cosy
