// A paged KV cache: fixed-size blocks of key/value rows from one pool in backend memory.
// Every sequence (stream) holds a block table; blocks are the same size, so streams of any
// length share the pool without fragmentation, and a finished or cancelled stream returns
// its blocks at once. Sequences may share their leading blocks (fork(): a voice's prompt
// prefix computed once). One table per sequence serves every layer (block b of layer l lives
// in layer l's slab). Not thread-safe: the one scheduler that owns it serialises every
// call; kernels only read the slabs.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/backend.h"

namespace cosy {

struct KvPoolGeometry {
  int64_t layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;  // rows per block
  int64_t blocks = 0;       // pool capacity
  int64_t row() const { return kv_heads * head_dim; }
  int64_t bytes_per_block() const;  // keys and values of every layer
};

class PagedKvPool {
 public:
  PagedKvPool(Backend& backend, const KvPoolGeometry& g);
  ~PagedKvPool();
  PagedKvPool(const PagedKvPool&) = delete;
  PagedKvPool& operator=(const PagedKvPool&) = delete;

  using SeqId = int64_t;
  SeqId create();
  // A new sequence whose first `rows` rows are those of `src` (rows <= its length): the
  // blocks they fill are shared, not copied (a block goes back to the pool when its last
  // sequence lets go), and a partly filled last block is copied, so both sequences can
  // append on their own. Fails, changing nothing, when that copy finds no free block.
  SeqId fork(Stream& s, SeqId src, int64_t rows);
  // Returns the sequence's blocks to the pool (shared ones once no other sequence holds
  // them); unknown ids are ignored (idempotent cancel).
  void release(SeqId seq);
  bool contains(SeqId seq) const { return seqs_.count(seq) != 0; }

  // Blocks `rows` more rows would take beyond what `seq` holds.
  int64_t blocks_needed(SeqId seq, int64_t rows) const;
  // Makes room for `rows` more rows (all layers); fails with a clear error, changing
  // nothing, when the pool is short.
  void reserve(SeqId seq, int64_t rows);
  // The same for several sequences at once (one batched step): all or nothing.
  struct Request {
    SeqId seq = 0;
    int64_t rows = 0;
  };
  void reserve(std::span<const Request> requests);
  // Writes `n` key and value rows (row stride `ld` floats) of `layer` at positions
  // [pos, pos + n), which reserve() must cover.
  void write(Stream& s, SeqId seq, int64_t layer, int64_t pos, const float* k, const float* v,
             int64_t n, int64_t ld);
  // Rows every layer holds; advanced by commit() once all layers are written, so a failed
  // forward leaves the sequence as it was.
  int64_t length(SeqId seq) const;
  void commit(SeqId seq, int64_t rows);
  // Keeps the first `rows` rows (<= length) and returns the blocks past them. A shared
  // block the sequence would write into next is copied first, so forks stay intact; fails,
  // changing nothing, when that copy finds no free block.
  void truncate(Stream& s, SeqId seq, int64_t rows);

  const int32_t* block_table(SeqId seq) const;
  const float* k_slab(int64_t layer) const { return k_ + layer * layer_stride_; }
  const float* v_slab(int64_t layer) const { return v_ + layer * layer_stride_; }
  const KvPoolGeometry& geometry() const { return g_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t sequences() const { return static_cast<int64_t>(seqs_.size()); }
  int64_t sequence_bytes(SeqId seq) const;  // memory the sequence holds now, shared blocks too

 private:
  struct Seq {
    std::vector<int32_t> blocks;
    int64_t length = 0;
  };
  Seq& get(SeqId seq);
  // A free block (the caller checked there is one) holding the first `rows` rows of `src`.
  int32_t copy_block(Stream& stream, int32_t src, int64_t rows);
  const Seq& get(SeqId seq) const;

  Backend& backend_;
  KvPoolGeometry g_;
  int64_t layer_stride_ = 0;  // floats per layer slab
  float* k_ = nullptr;
  float* v_ = nullptr;
  std::vector<int32_t> free_;
  std::vector<int32_t> refs_;  // per block: the sequences holding it
  std::unordered_map<SeqId, Seq> seqs_;
  SeqId next_id_ = 1;
};

}  // namespace cosy
