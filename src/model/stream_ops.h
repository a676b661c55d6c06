// The two layer kinds that look beyond the current row, in a form that runs on a stream's
// new rows only: self-attention whose earlier keys/values come from a KvHistory, and a
// causal conv whose earlier input rows come from a saved tail. With no history they are the
// plain full-sequence layers (zero left padding), so one code path serves the official
// recompute and incremental streaming.
#pragma once

#include <span>
#include <vector>

#include "model/flow/flow_state.h"
#include "model/layers.h"

namespace cosy {

struct SelfAttentionIo {
  const Act* q = nullptr;      // new rows' queries [n, heads*dk]
  const Act* q_rel = nullptr;  // relative-position queries (conformer), or null
  const Act* k = nullptr;      // new rows' keys and values
  const Act* v = nullptr;
  Act* out = nullptr;            // [n, heads*dk]
  KvHistory* history = nullptr;  // keys/values of rows [0, start); null: start must be 0
  int64_t start = 0;             // absolute row of the first new row
  int64_t commit = -1;           // rows the history keeps afterwards (-1: all)
  bool chunked = false;          // chunk-causal mask, or full attention
};

// `base` carries heads, head size, chunk, left chunks and the relative table.
void self_attention(Exec& e, std::span<SelfAttentionIo> seqs, const AttentionArgs& base);

struct CausalConvIo {
  const Act* x = nullptr;              // new input rows
  Act* y = nullptr;                    // new output rows (same count)
  DeviceArray<float>* tail = nullptr;  // the kernel-1 input rows before `start`; null: zeros
  int64_t start = 0;
  int64_t commit = -1;  // the tail is left holding the rows before this one (-1: unchanged)
};

// `conv` must be loaded without padding; stride and dilation 1. `scratch` holds the inputs
// with their context rows (kept by the caller from call to call: no allocation once grown).
void causal_conv(Exec& e, const ConvLayer& conv, std::span<CausalConvIo> seqs, Batch& scratch,
                 Activation pre = {}, bool accumulate = false);

}  // namespace cosy
