// A paged KV cache: fixed-size blocks of key/value rows from one shared pool. Sequences of
// any length hold a block table; a finished or cancelled sequence returns its blocks at
// once; there is no fragmentation because every block is the same size. Not thread-safe:
// the scheduler that owns it serialises allocate/append/release (kernels only read).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace cosy::cpu {

class PagedKvCache {
 public:
  PagedKvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t block_size,
               int64_t max_blocks);

  using SeqId = int64_t;
  SeqId create_sequence();
  // Appends `n` rows (each kv_heads*head_dim floats) to `layer`; grows the block table
  // when the last block fills. Fails with a clear error when the pool is exhausted.
  void append(SeqId seq, int64_t layer, const float* k, const float* v, int64_t n);
  // Rows cached in `layer`.
  int64_t length(SeqId seq, int64_t layer) const;
  const int32_t* block_table(SeqId seq) const;
  void release(SeqId seq);

  const float* k_pool(int64_t layer) const { return k_.get() + layer * layer_stride_; }
  const float* v_pool(int64_t layer) const { return v_.get() + layer * layer_stride_; }
  int64_t block_size() const { return block_size_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t bytes_per_block() const;  // over all layers, keys and values
  int64_t sequence_bytes(SeqId seq) const;

 private:
  struct Seq {
    std::vector<int32_t> blocks;
    std::vector<int64_t> lengths;  // per layer
  };
  Seq& get(SeqId seq);
  const Seq& get(SeqId seq) const;

  int64_t layers_, row_, block_size_, max_blocks_, layer_stride_;
  std::unique_ptr<float[]> k_, v_;
  std::vector<int32_t> free_;
  std::unordered_map<SeqId, Seq> seqs_;
  SeqId next_id_ = 1;
};

}  // namespace cosy::cpu
