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

uint32_t crc32_combine_of(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return static_cast<uint32_t>(crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(length_b)));
}

}  // namespace cosy
