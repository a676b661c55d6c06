// Reader for the zip container torch.save writes (stored entries, 64-byte aligned data,
// ZIP64 for large archives). Stored entries are returned zero-copy; deflated ones, which
// torch never writes but a repacked archive may hold, are inflated into memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/blob.h"

namespace cosy {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t data_offset = 0;  // of the entry's bytes in the archive
};

class ZipArchive {
 public:
  // Parses the central directory of `archive`; `label` names it in errors (a path).
  ZipArchive(Blob archive, std::string label);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  const std::string& label() const { return label_; }

  // The entry's uncompressed bytes. Stored entries alias the archive (zero copy).
  Blob read(const ZipEntry& entry) const;
  // Reads and checks the CRC-32 of the entry; fails on mismatch.
  Blob read_verified(const ZipEntry& entry) const;

 private:
  void parse();
  std::optional<uint64_t> find_end_of_central_directory() const;

  Blob archive_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace cosy
