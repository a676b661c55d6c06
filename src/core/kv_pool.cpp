#include "core/kv_pool.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace cosy {

int64_t KvPoolGeometry::bytes_per_block() const {
  return 2 * layers * block_size * row() * static_cast<int64_t>(sizeof(float));
}

PagedKvPool::PagedKvPool(Backend& backend, const KvPoolGeometry& g) : backend_(backend), g_(g) {
  if (g.layers <= 0 || g.row() <= 0 || g.block_size <= 0 || g.blocks <= 0 ||
      g.blocks > std::numeric_limits<int32_t>::max()) {
    fail("kv pool: bad geometry (layers ", g.layers, ", row ", g.row(), ", block ", g.block_size,
         ", blocks ", g.blocks, ")");
  }
  layer_stride_ = g.blocks * g.block_size * g.row();
  const auto bytes = static_cast<size_t>(g.layers * layer_stride_) * sizeof(float);
  k_ = static_cast<float*>(backend_.allocate(bytes, MemoryKind::Device));
  try {
    v_ = static_cast<float*>(backend_.allocate(bytes, MemoryKind::Device));
  } catch (...) {
    backend_.deallocate(k_, MemoryKind::Device);
    throw;
  }
  refs_.assign(static_cast<size_t>(g.blocks), 0);
  free_.reserve(static_cast<size_t>(g.blocks));
  for (int64_t b = g.blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

PagedKvPool::~PagedKvPool() {
  backend_.deallocate(k_, MemoryKind::Device);
  backend_.deallocate(v_, MemoryKind::Device);
}

PagedKvPool::SeqId PagedKvPool::create() {
  const SeqId id = next_id_++;
  seqs_[id];
  return id;
}

int32_t PagedKvPool::copy_block(Stream& stream, int32_t src, int64_t rows) {
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  const size_t bytes = static_cast<size_t>(rows * g_.row()) * sizeof(float);
  for (int64_t l = 0; l < g_.layers; ++l) {
    const int64_t to = l * layer_stride_ + b * g_.block_size * g_.row();
    const int64_t at = l * layer_stride_ + src * g_.block_size * g_.row();
    backend_.copy(stream, k_ + to, k_ + at, bytes);
    backend_.copy(stream, v_ + to, v_ + at, bytes);
  }
  return b;
}

PagedKvPool::SeqId PagedKvPool::fork(Stream& stream, SeqId src, int64_t rows) {
  const Seq& from = get(src);
  if (rows < 0 || rows > from.length)
    fail("kv pool: cannot fork ", rows, " rows of a sequence of ", from.length);
  const int64_t whole = rows / g_.block_size, part = rows % g_.block_size;
  if (part > 0 && free_.empty()) fail("kv pool: out of blocks for a fork");
  Seq s;
  s.length = rows;
  for (int64_t i = 0; i < whole; ++i) {
    const int32_t b = from.blocks[static_cast<size_t>(i)];
    ++refs_[static_cast<size_t>(b)];
    s.blocks.push_back(b);
  }
  if (part > 0)
    s.blocks.push_back(copy_block(stream, from.blocks[static_cast<size_t>(whole)], part));
  const SeqId id = next_id_++;
  seqs_[id] = std::move(s);
  return id;
}

void PagedKvPool::release(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (int32_t b : it->second.blocks) {
    if (--refs_[static_cast<size_t>(b)] == 0) free_.push_back(b);
  }
  seqs_.erase(it);
}

PagedKvPool::Seq& PagedKvPool::get(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("kv pool: unknown sequence ", seq);
  return it->second;
}

const PagedKvPool::Seq& PagedKvPool::get(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("kv pool: unknown sequence ", seq);
  return it->second;
}

int64_t PagedKvPool::blocks_needed(SeqId seq, int64_t rows) const {
  const Seq& s = get(seq);
  const int64_t need = (s.length + rows + g_.block_size - 1) / g_.block_size;
  return std::max<int64_t>(0, need - static_cast<int64_t>(s.blocks.size()));
}

void PagedKvPool::reserve(SeqId seq, int64_t rows) {
  const Request one{seq, rows};
  reserve({&one, 1});
}

void PagedKvPool::reserve(std::span<const Request> requests) {
  int64_t extra = 0;
  for (const Request& r : requests) {
    if (r.rows < 0) fail("kv pool: negative row count");
    extra += blocks_needed(r.seq, r.rows);
  }
  if (extra > free_blocks()) {
    fail("kv pool: out of blocks (", free_blocks(), " free, ", extra,
         " needed); admit fewer streams or give the pool more memory");
  }
  for (const Request& r : requests) {
    Seq& s = get(r.seq);
    for (int64_t i = blocks_needed(r.seq, r.rows); i > 0; --i) {
      s.blocks.push_back(free_.back());
      refs_[static_cast<size_t>(free_.back())] = 1;
      free_.pop_back();
    }
  }
}

void PagedKvPool::write(Stream& stream, SeqId seq, int64_t layer, int64_t pos, const float* k,
                        const float* v, int64_t n, int64_t ld) {
  const Seq& s = get(seq);
  if (layer < 0 || layer >= g_.layers) fail("kv pool: layer ", layer, " out of range");
  if (pos < 0 || pos + n > static_cast<int64_t>(s.blocks.size()) * g_.block_size)
    fail("kv pool: rows [", pos, ", ", pos + n, ") not reserved");
  const int64_t row = g_.row();
  const size_t row_bytes = static_cast<size_t>(row) * sizeof(float);
  // A run of rows inside one block is contiguous in the slab when the source is packed.
  for (int64_t r = 0; r < n;) {
    const int64_t p = pos + r;
    const int64_t in_block = std::min(n - r, g_.block_size - p % g_.block_size);
    const int32_t block = s.blocks[static_cast<size_t>(p / g_.block_size)];
    if (refs_[static_cast<size_t>(block)] != 1)
      fail("kv pool: rows [", p, ", ", p + in_block, ") lie in a block other sequences share");
    const int64_t at = layer * layer_stride_ + (block * g_.block_size + p % g_.block_size) * row;
    if (ld == row) {
      backend_.copy(stream, k_ + at, k + r * ld, row_bytes * static_cast<size_t>(in_block));
      backend_.copy(stream, v_ + at, v + r * ld, row_bytes * static_cast<size_t>(in_block));
    } else {
      for (int64_t i = 0; i < in_block; ++i) {
        backend_.copy(stream, k_ + at + i * row, k + (r + i) * ld, row_bytes);
        backend_.copy(stream, v_ + at + i * row, v + (r + i) * ld, row_bytes);
      }
    }
    r += in_block;
  }
}

int64_t PagedKvPool::length(SeqId seq) const { return get(seq).length; }

void PagedKvPool::commit(SeqId seq, int64_t rows) {
  Seq& s = get(seq);
  if (s.length + rows > static_cast<int64_t>(s.blocks.size()) * g_.block_size)
    fail("kv pool: commit beyond the reserved rows");
  s.length += rows;
}

void PagedKvPool::truncate(Stream& stream, SeqId seq, int64_t rows) {
  Seq& s = get(seq);
  if (rows < 0 || rows > s.length)
    fail("kv pool: cannot truncate a sequence of ", s.length, " rows to ", rows);
  const auto keep = static_cast<size_t>((rows + g_.block_size - 1) / g_.block_size);
  const int64_t part = rows % g_.block_size;
  // The block that the next rows land in must be this sequence's own.
  if (part > 0 && refs_[static_cast<size_t>(s.blocks[keep - 1])] > 1) {
    if (free_.empty()) fail("kv pool: out of blocks to truncate into a shared block");
    const int32_t src = s.blocks[keep - 1];
    s.blocks[keep - 1] = copy_block(stream, src, part);
    --refs_[static_cast<size_t>(src)];
  }
  for (size_t i = keep; i < s.blocks.size(); ++i) {
    if (--refs_[static_cast<size_t>(s.blocks[i])] == 0) free_.push_back(s.blocks[i]);
  }
  s.blocks.resize(keep);
  s.length = rows;
}

const int32_t* PagedKvPool::block_table(SeqId seq) const { return get(seq).blocks.data(); }

int64_t PagedKvPool::sequence_bytes(SeqId seq) const {
  return static_cast<int64_t>(get(seq).blocks.size()) * g_.bytes_per_block();
}

}  // namespace cosy
