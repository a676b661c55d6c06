#include "model/flow/uncond_first_pass.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

size_t UncondFirstPass::shared_bytes() const {
  size_t b = 0;
  for (const auto& h : state.kv) b += h.shared_bytes();
  return b;
}

UncondFirstPassCache::UncondFirstPassCache(int64_t max_entries) : max_entries_(max_entries) {
  if (max_entries < 1) fail("uncond first-pass cache: max_entries must be >= 1");
}

std::shared_ptr<const UncondFirstPass> UncondFirstPassCache::find(const UncondChunk& chunk) const {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const auto& e) { return e->chunk == chunk; });
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  entries_.splice(entries_.begin(), entries_, it);
  return entries_.front();
}

void UncondFirstPassCache::insert(std::shared_ptr<const UncondFirstPass> entry) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& e) { return e->chunk == entry->chunk; });
  entries_.push_front(std::move(entry));
  while (static_cast<int64_t>(entries_.size()) > max_entries_) entries_.pop_back();
}

int64_t UncondFirstPassCache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

int64_t UncondFirstPassCache::misses() const {
  std::lock_guard lock(mutex_);
  return misses_;
}

int64_t UncondFirstPassCache::entries() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(entries_.size());
}

size_t UncondFirstPassCache::bytes() const {
  std::lock_guard lock(mutex_);
  size_t b = 0;
  for (const auto& e : entries_) b += e->bytes();
  return b;
}

}  // namespace cosy
