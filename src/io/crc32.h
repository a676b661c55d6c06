#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cosy {

// CRC-32 (zip polynomial) of `bytes`, continuing from `crc` (0 to start).
uint32_t crc32_of(std::span<const std::byte> bytes, uint32_t crc = 0);

}  // namespace cosy
