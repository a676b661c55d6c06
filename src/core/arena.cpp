#include "core/arena.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace cosy {

namespace {
std::byte* aligned_block(size_t bytes) {
  void* p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<std::byte*>(p);
}
void free_block(std::byte* p) { std::free(p); }
}  // namespace

Arena::Arena(size_t initial_bytes) {
  if (initial_bytes > 0) add_block(initial_bytes);
}

void Arena::add_block(size_t min_bytes) {
  const size_t last = blocks_.empty() ? 0 : blocks_.back().size;
  const size_t size = std::max({min_bytes, last * 2, size_t{1} << 20});
  Block b;
  b.data = {aligned_block(size), free_block};
  b.size = size;
  if (!blocks_.empty()) used_before_current_ += blocks_.back().offset;
  blocks_.push_back(std::move(b));
  ++block_allocations_;
}

void* Arena::allocate(size_t bytes, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 4096) {
    fail("Arena: bad alignment ", alignment);
  }
  bytes = std::max<size_t>(bytes, 1);
  if (!blocks_.empty()) {
    Block& b = blocks_.back();
    const size_t start = (b.offset + alignment - 1) & ~(alignment - 1);
    if (start <= b.size && bytes <= b.size - start) {
      b.offset = start + bytes;
      high_water_ = std::max(high_water_, used());
      return b.data.get() + start;
    }
  }
  add_block(bytes + alignment);
  Block& b = blocks_.back();
  b.offset = bytes;
  high_water_ = std::max(high_water_, used());
  return b.data.get();
}

std::span<float> Arena::zeros(size_t count) {
  auto s = alloc<float>(count);
  std::memset(s.data(), 0, count * sizeof(float));
  return s;
}

size_t Arena::used() const {
  return blocks_.empty() ? 0 : used_before_current_ + blocks_.back().offset;
}

size_t Arena::capacity() const {
  size_t total = 0;
  for (const auto& b : blocks_) total += b.size;
  return total;
}

void Arena::reset() {
  if (blocks_.size() > 1) {
    // One block big enough for the whole high-water step, so the next one fits.
    const size_t want = std::max(high_water_ + high_water_ / 8, capacity());
    blocks_.clear();
    used_before_current_ = 0;
    add_block(want);
  }
  if (!blocks_.empty()) blocks_.back().offset = 0;
  used_before_current_ = 0;
}

}  // namespace cosy
