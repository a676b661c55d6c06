#include "kernels/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace cosy::cpu {

PagedKvCache::PagedKvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t block_size,
                           int64_t max_blocks)
    : layers_(layers), row_(kv_heads * head_dim), block_size_(block_size), max_blocks_(max_blocks) {
  if (layers <= 0 || row_ <= 0 || block_size <= 0 || max_blocks <= 0 || max_blocks > INT32_MAX) {
    fail("kv cache: bad geometry");
  }
  // Blocks are shared by all layers (block b of layer l at layer l's pool): one table per
  // sequence serves every layer.
  layer_stride_ = max_blocks * block_size * row_;
  k_ = std::make_unique<float[]>(static_cast<size_t>(layers * layer_stride_));
  v_ = std::make_unique<float[]>(static_cast<size_t>(layers * layer_stride_));
  free_.reserve(static_cast<size_t>(max_blocks));
  for (int64_t b = max_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

PagedKvCache::SeqId PagedKvCache::create_sequence() {
  const SeqId id = next_id_++;
  seqs_[id].lengths.assign(static_cast<size_t>(layers_), 0);
  return id;
}

PagedKvCache::Seq& PagedKvCache::get(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("kv cache: unknown sequence ", seq);
  return it->second;
}
const PagedKvCache::Seq& PagedKvCache::get(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("kv cache: unknown sequence ", seq);
  return it->second;
}

void PagedKvCache::append(SeqId seq, int64_t layer, const float* k, const float* v, int64_t n) {
  Seq& s = get(seq);
  if (layer < 0 || layer >= layers_) fail("kv cache: layer ", layer, " out of range");
  int64_t& len = s.lengths[static_cast<size_t>(layer)];
  const int64_t need = (len + n + block_size_ - 1) / block_size_;
  const int64_t extra = need - static_cast<int64_t>(s.blocks.size());
  if (extra > static_cast<int64_t>(free_.size())) {
    fail("kv cache: out of blocks (", free_.size(), " free, ", extra,
         " needed); admit fewer streams");
  }
  for (int64_t i = 0; i < extra; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
  for (int64_t r = 0; r < n; ++r, ++len) {
    const int64_t block = s.blocks[static_cast<size_t>(len / block_size_)];
    const int64_t at = layer * layer_stride_ + (block * block_size_ + len % block_size_) * row_;
    std::memcpy(k_.get() + at, k + r * row_, static_cast<size_t>(row_) * sizeof(float));
    std::memcpy(v_.get() + at, v + r * row_, static_cast<size_t>(row_) * sizeof(float));
  }
}

int64_t PagedKvCache::length(SeqId seq, int64_t layer) const {
  return get(seq).lengths.at(static_cast<size_t>(layer));
}

const int32_t* PagedKvCache::block_table(SeqId seq) const { return get(seq).blocks.data(); }

void PagedKvCache::release(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (int32_t b : it->second.blocks) free_.push_back(b);
  seqs_.erase(it);
}

int64_t PagedKvCache::bytes_per_block() const {
  return 2 * layers_ * block_size_ * row_ * static_cast<int64_t>(sizeof(float));
}

int64_t PagedKvCache::sequence_bytes(SeqId seq) const {
  return static_cast<int64_t>(get(seq).blocks.size()) * bytes_per_block();
}

}  // namespace cosy::cpu
