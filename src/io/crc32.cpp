#include "io/crc32.h"

#include <zlib.h>

#include <algorithm>

namespace cosy {

uint32_t crc32_of(std::span<const std::byte> bytes, uint32_t crc) {
  uLong c = crc;
  size_t done = 0;
  while (done < bytes.size()) {
    const size_t n = std::min<size_t>(bytes.size() - done, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(c);
}

}  // namespace cosy
