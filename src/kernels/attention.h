// Multi-head attention over a paged KV cache (see AttentionArgs in core/backend.h):
// grouped-query heads, no/causal/chunk-causal masks, an optional additive bias (the
// conformer's relative-position term), many sequences of different lengths per call.
#pragma once

#include <span>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace cosy::cpu {

void attention(ThreadPool& pool, std::span<const AttentionSeq> seqs, const AttentionArgs& a);

// Keys visible to a query at absolute position `pos` under the mask: [begin, end).
struct KeyRange {
  int64_t begin, end;
};
KeyRange visible_keys(const AttentionArgs& a, int64_t pos, int64_t kv_len);

}  // namespace cosy::cpu
