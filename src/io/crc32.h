#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cosy {

// CRC-32 (zip polynomial) of `bytes`, continuing from `crc` (0 to start).
uint32_t crc32_of(std::span<const std::byte> bytes, uint32_t crc = 0);
// The CRC-32 of A followed by B, from crc(A), crc(B) and B's length (zlib's crc32_combine).
uint32_t crc32_combine_of(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);

}  // namespace cosy
