#include "io/zip_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/crc32.h"

namespace cosy {
namespace {

constexpr uint32_t kMax32 = 0xffffffff;
constexpr uint16_t kDosTime = 0;
constexpr uint16_t kDosDate = (1980 - 1980) << 9 | 1 << 5 | 1;  // 1980-01-01, reproducible output

}  // namespace

ZipWriter::ZipWriter(const std::filesystem::path& path, ZipWriterOptions options)
    : path_(path), options_(options) {
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) fail(path.string(), ": cannot create: ", std::strerror(errno));
}

ZipWriter::~ZipWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void ZipWriter::write(const void* p, size_t n) {
  if (n != 0 && std::fwrite(p, 1, n, file_) != n)
    fail(path_.string(), ": write failed: ", std::strerror(errno));
  offset_ += n;
}

void ZipWriter::add(const std::string& name, std::string_view text) {
  add(name,
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

void ZipWriter::add(const std::string& name, std::span<const std::byte> data) {
  if (file_ == nullptr) fail(path_.string(), ": add after finish");
  Written w{name, crc32_of(data), data.size(), offset_, false};
  w.zip64 = options_.force_zip64 || data.size() >= kMax32 || offset_ >= kMax32;
  const uint16_t zip64_len = w.zip64 ? 4 + 16 : 0;
  // Pad with an extra field ('FB', as torch does) so the data lands on the alignment.
  const uint64_t unpadded = offset_ + 30 + name.size() + zip64_len + 4;
  const uint64_t pad = (options_.alignment - unpadded % options_.alignment) % options_.alignment;
  put<uint32_t>(0x04034b50);
  put<uint16_t>(w.zip64 ? 45 : 20);
  put<uint16_t>(0);  // flags
  put<uint16_t>(0);  // stored
  put<uint16_t>(kDosTime);
  put<uint16_t>(kDosDate);
  put<uint32_t>(w.crc);
  put<uint32_t>(w.zip64 ? kMax32 : static_cast<uint32_t>(w.size));
  put<uint32_t>(w.zip64 ? kMax32 : static_cast<uint32_t>(w.size));
  put<uint16_t>(static_cast<uint16_t>(name.size()));
  put<uint16_t>(static_cast<uint16_t>(zip64_len + 4 + pad));
  write(name.data(), name.size());
  if (w.zip64) {
    put<uint16_t>(0x0001);
    put<uint16_t>(16);
    put<uint64_t>(w.size);
    put<uint64_t>(w.size);
  }
  put<uint16_t>(0x4246);
  put<uint16_t>(static_cast<uint16_t>(pad));
  static const char zeros[64] = {};
  write(zeros, pad);
  write(data.data(), data.size());
  entries_.push_back(std::move(w));
}

void ZipWriter::finish() {
  if (file_ == nullptr) return;
  const uint64_t cd_offset = offset_;
  for (const Written& w : entries_) {
    const bool big = w.zip64 || w.offset >= kMax32;
    put<uint32_t>(0x02014b50);
    put<uint16_t>(big ? 45 : 20);  // made by
    put<uint16_t>(big ? 45 : 20);  // needed
    put<uint16_t>(0);
    put<uint16_t>(0);
    put<uint16_t>(kDosTime);
    put<uint16_t>(kDosDate);
    put<uint32_t>(w.crc);
    put<uint32_t>(big ? kMax32 : static_cast<uint32_t>(w.size));
    put<uint32_t>(big ? kMax32 : static_cast<uint32_t>(w.size));
    put<uint16_t>(static_cast<uint16_t>(w.name.size()));
    put<uint16_t>(big ? 4 + 24 : 0);
    put<uint16_t>(0);  // comment
    put<uint16_t>(0);  // disk
    put<uint16_t>(0);  // internal attributes
    put<uint32_t>(0);  // external attributes
    put<uint32_t>(big ? kMax32 : static_cast<uint32_t>(w.offset));
    write(w.name.data(), w.name.size());
    if (big) {
      put<uint16_t>(0x0001);
      put<uint16_t>(24);
      put<uint64_t>(w.size);
      put<uint64_t>(w.size);
      put<uint64_t>(w.offset);
    }
  }
  const uint64_t cd_size = offset_ - cd_offset;
  const uint64_t count = entries_.size();
  const bool zip64 =
      options_.force_zip64 || count >= 0xffff || cd_offset >= kMax32 || cd_size >= kMax32 ||
      std::any_of(entries_.begin(), entries_.end(), [](const Written& w) { return w.zip64; });
  if (zip64) {
    const uint64_t zip64_eocd = offset_;
    put<uint32_t>(0x06064b50);
    put<uint64_t>(44);
    put<uint16_t>(45);
    put<uint16_t>(45);
    put<uint32_t>(0);
    put<uint32_t>(0);
    put<uint64_t>(count);
    put<uint64_t>(count);
    put<uint64_t>(cd_size);
    put<uint64_t>(cd_offset);
    put<uint32_t>(0x07064b50);
    put<uint32_t>(0);
    put<uint64_t>(zip64_eocd);
    put<uint32_t>(1);
  }
  put<uint32_t>(0x06054b50);
  put<uint16_t>(0);
  put<uint16_t>(0);
  put<uint16_t>(zip64 ? 0xffff : static_cast<uint16_t>(count));
  put<uint16_t>(zip64 ? 0xffff : static_cast<uint16_t>(count));
  put<uint32_t>(zip64 ? kMax32 : static_cast<uint32_t>(cd_size));
  put<uint32_t>(zip64 ? kMax32 : static_cast<uint32_t>(cd_offset));
  put<uint16_t>(0);
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) fail(path_.string(), ": close failed: ", std::strerror(errno));
}

}  // namespace cosy
