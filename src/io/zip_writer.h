// Writer for torch.save-compatible zip archives: stored entries whose data starts on a
// 64-byte boundary (so readers can map tensors in place), ZIP64 when sizes demand it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace cosy {

struct ZipWriterOptions {
  size_t alignment = 64;
  bool force_zip64 = false;  // write ZIP64 records even for small archives (tests)
};

class ZipWriter {
 public:
  ZipWriter(const std::filesystem::path& path, ZipWriterOptions options = {});
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  void add(const std::string& name, std::span<const std::byte> data);
  void add(const std::string& name, std::string_view text);
  // Writes the central directory and closes the file. Required; the destructor only closes.
  void finish();

 private:
  struct Written {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0;
    uint64_t offset = 0;
    bool zip64 = false;
  };
  void write(const void* p, size_t n);
  template <typename T>
  void put(T v) {
    write(&v, sizeof(T));
  }

  std::filesystem::path path_;
  ZipWriterOptions options_;
  std::FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  std::vector<Written> entries_;
};

}  // namespace cosy
