#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/crc32.h"

namespace cosy {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr size_t kEocdSize = 22;
constexpr size_t kMaxComment = 0xffff;
// Deflate cannot expand more than ~1032:1, so a larger claimed size is corrupt; checking
// it before allocating bounds memory by the bytes actually present.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

ZipArchive::ZipArchive(Blob archive, std::string label)
    : archive_(std::move(archive)), label_(std::move(label)) {
  with_context(label_, [&] { parse(); });
}

std::optional<uint64_t> ZipArchive::find_end_of_central_directory() const {
  const auto& b = archive_.bytes;
  if (b.size() < kEocdSize) return std::nullopt;
  const size_t lowest =
      b.size() >= kEocdSize + kMaxComment ? b.size() - kEocdSize - kMaxComment : 0;
  for (size_t p = b.size() - kEocdSize + 1; p-- > lowest;) {
    if (b[p] == std::byte{0x50} && b[p + 1] == std::byte{0x4b} && b[p + 2] == std::byte{0x05} &&
        b[p + 3] == std::byte{0x06}) {
      return p;
    }
  }
  return std::nullopt;
}

void ZipArchive::parse() {
  const auto eocd_pos = find_end_of_central_directory();
  if (!eocd_pos) fail("not a zip archive, or truncated (no end-of-central-directory record)");
  ByteReader r(archive_.bytes, "zip");
  r.seek(*eocd_pos);
  if (r.u32() != kEndOfCentralDir) fail("bad end-of-central-directory signature");
  const uint16_t disk = r.u16();
  const uint16_t cd_disk = r.u16();
  uint64_t entries_on_disk = r.u16();
  uint64_t total_entries = r.u16();
  uint64_t cd_size = r.u32();
  uint64_t cd_offset = r.u32();
  if (disk != 0 || cd_disk != 0) {
    if (disk != 0xffff && cd_disk != 0xffff) fail("multi-disk zip archives are not supported");
  }
  const bool needs_zip64 = total_entries == 0xffff || entries_on_disk == 0xffff ||
                           cd_size == 0xffffffff || cd_offset == 0xffffffff;
  // The ZIP64 locator, when present, sits right before the classic record.
  if (*eocd_pos >= 20) {
    r.seek(*eocd_pos - 20);
    if (r.u32() == kZip64Locator) {
      r.skip(4);
      const uint64_t zip64_eocd = r.u64();
      r.seek(zip64_eocd);
      if (r.u32() != kZip64EndOfCentralDir) fail("bad ZIP64 end-of-central-directory signature");
      r.skip(8 + 2 + 2 + 4 + 4);  // record size, versions, disk numbers
      entries_on_disk = r.u64();
      total_entries = r.u64();
      cd_size = r.u64();
      cd_offset = r.u64();
    } else if (needs_zip64) {
      fail("ZIP64 fields set but no ZIP64 locator found");
    }
  } else if (needs_zip64) {
    fail("ZIP64 fields set but no ZIP64 locator found");
  }
  if (cd_offset > archive_.bytes.size() || cd_size > archive_.bytes.size() - cd_offset) {
    fail("central directory (offset ", cd_offset, ", size ", cd_size, ") lies outside the ",
         archive_.bytes.size(), "-byte file: truncated or corrupt");
  }
  // Each central record is at least 46 bytes: bound the count before reserving.
  if (total_entries > cd_size / 46)
    fail("entry count ", total_entries, " does not fit the directory");
  entries_.reserve(total_entries);

  ByteReader cd(archive_.bytes.subspan(cd_offset, cd_size), "zip central directory");
  for (uint64_t i = 0; i < total_entries; ++i) {
    if (cd.u32() != kCentralHeader) fail("corrupt central directory at entry ", i);
    cd.skip(2 + 2 + 2);  // versions, flags
    ZipEntry e;
    e.method = cd.u16();
    cd.skip(4);  // time, date
    e.crc32 = cd.u32();
    e.compressed_size = cd.u32();
    e.uncompressed_size = cd.u32();
    const uint16_t name_len = cd.u16();
    const uint16_t extra_len = cd.u16();
    const uint16_t comment_len = cd.u16();
    cd.skip(2 + 2 + 4);  // disk start, internal and external attributes
    uint64_t local_offset = cd.u32();
    e.name = std::string(cd.take_string(name_len));
    ByteReader extra(cd.take(extra_len), "zip extra field");
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.u16();
      const uint16_t len = extra.u16();
      ByteReader field(extra.take(len), "ZIP64 extra field of " + e.name);
      if (id != kZip64ExtraId) continue;
      if (e.uncompressed_size == 0xffffffff) e.uncompressed_size = field.u64();
      if (e.compressed_size == 0xffffffff) e.compressed_size = field.u64();
      if (local_offset == 0xffffffff) local_offset = field.u64();
    }
    cd.skip(comment_len);

    if (e.method != 0 && e.method != 8) {
      fail("entry '", e.name, "' uses compression method ", e.method,
           " (only stored and deflate are supported)");
    }
    if (e.method == 0 && e.compressed_size != e.uncompressed_size) {
      fail("stored entry '", e.name, "' has different compressed and uncompressed sizes");
    }
    // Locate the data through the local header, whose extra field may differ (torch pads it).
    ByteReader local(archive_.bytes, "zip local header of " + e.name);
    local.seek(local_offset);
    if (local.u32() != kLocalHeader) fail("corrupt local header for entry '", e.name, "'");
    local.skip(22);
    const uint16_t local_name_len = local.u16();
    const uint16_t local_extra_len = local.u16();
    local.skip(local_name_len);
    local.skip(local_extra_len);
    e.data_offset = local.pos();
    if (e.compressed_size > archive_.bytes.size() - e.data_offset) {
      fail("entry '", e.name, "' (", e.compressed_size, " bytes at offset ", e.data_offset,
           ") runs past the end of the ", archive_.bytes.size(), "-byte file: truncated");
    }
    if (!by_name_.emplace(e.name, entries_.size()).second) fail("duplicate entry '", e.name, "'");
    entries_.push_back(std::move(e));
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

Blob ZipArchive::read(const ZipEntry& e) const {
  Blob raw = archive_.sub(e.data_offset, e.compressed_size);
  if (e.method == 0) return raw;
  return with_context(label_ + ": entry '" + e.name + "'", [&] {
    if (e.uncompressed_size > e.compressed_size * kMaxDeflateRatio + 64) {
      fail("declares ", e.uncompressed_size, " inflated bytes from ", e.compressed_size,
           " compressed: corrupt");
    }
    auto out = std::make_shared<std::vector<std::byte>>(e.uncompressed_size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail("inflateInit failed");
    std::unique_ptr<z_stream, int (*)(z_streamp)> guard(&zs, inflateEnd);
    size_t in_done = 0;
    size_t out_done = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const size_t in_chunk = std::min<size_t>(raw.bytes.size() - in_done, 1u << 30);
      const size_t out_chunk = std::min<size_t>(out->size() - out_done, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.bytes.data() + in_done));
      zs.avail_in = static_cast<uInt>(in_chunk);
      zs.next_out = reinterpret_cast<Bytef*>(out->data() + out_done);
      zs.avail_out = static_cast<uInt>(out_chunk);
      rc = inflate(&zs, Z_NO_FLUSH);
      in_done += in_chunk - zs.avail_in;
      out_done += out_chunk - zs.avail_out;
      if (rc == Z_OK && in_chunk == zs.avail_in && out_chunk == zs.avail_out) break;  // no progress
    }
    if (rc != Z_STREAM_END || out_done != out->size()) fail("corrupt deflate data");
    return Blob{std::span<const std::byte>(out->data(), out->size()), out};
  });
}

Blob ZipArchive::read_verified(const ZipEntry& e) const {
  Blob b = read(e);
  if (crc32_of(b.bytes) != e.crc32)
    fail(label_, ": entry '", e.name, "' fails its CRC-32 check (corrupt)");
  return b;
}

}  // namespace cosy
