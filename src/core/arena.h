// Bump allocator for activations. A step allocates its scratch from the arena and calls
// reset() when done; the blocks stay, so once the arena has seen the largest step the
// steady state makes no heap allocation. After a step that needed several blocks, reset()
// merges them into one block of the high-water size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace cosy {

class Arena {
 public:
  explicit Arena(size_t initial_bytes = 0);

  // Uninitialised memory, `alignment` (a power of two ≤ 4096) aligned, valid until reset().
  void* allocate(size_t bytes, size_t alignment = 64);
  template <typename T>
  std::span<T> alloc(size_t count) {
    return {static_cast<T*>(allocate(count * sizeof(T), alignof(T) < 64 ? 64 : alignof(T))), count};
  }
  // Zero-filled floats.
  std::span<float> zeros(size_t count);

  void reset();
  size_t used() const;  // bytes handed out since reset
  size_t high_water() const { return high_water_; }
  size_t capacity() const;                                          // bytes owned
  int64_t block_allocations() const { return block_allocations_; }  // heap allocations so far

 private:
  struct Block {
    std::unique_ptr<std::byte[], void (*)(std::byte*)> data{nullptr, nullptr};
    size_t size = 0;
    size_t offset = 0;
  };
  void add_block(size_t min_bytes);

  std::vector<Block> blocks_;
  size_t high_water_ = 0;
  size_t used_before_current_ = 0;
  int64_t block_allocations_ = 0;
};

}  // namespace cosy
