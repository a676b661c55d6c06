// Blob: bytes plus whatever keeps them alive (a file mapping, a heap buffer, or nothing
// when the caller guarantees lifetime, as fuzzers do).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace cosy {

struct Blob {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;

  std::string_view text() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  Blob sub(size_t offset, size_t size) const { return {bytes.subspan(offset, size), owner}; }
};

// Copies bytes into a fresh heap blob that owns them.
Blob copy_blob(std::span<const std::byte> bytes);

}  // namespace cosy
