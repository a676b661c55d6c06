#include "io/zip_verify.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "io/crc32.h"

namespace cosy {
namespace {

// Large enough that combining pieces costs nothing, small enough to balance the threads.
constexpr uint64_t kPieceBytes = uint64_t{16} << 20;

struct Piece {
  size_t archive = 0;
  size_t entry = 0;
  uint64_t offset = 0;  // within the entry's uncompressed bytes
  uint64_t size = 0;
  uint32_t crc = 0;
};

}  // namespace

void verify_zip_entries(const std::vector<std::shared_ptr<const ZipArchive>>& archives,
                        ThreadPool& pool) {
  // Deflated entries (torch never writes them) are inflated once, here, then checked whole.
  std::vector<std::vector<Blob>> bytes(archives.size());
  std::vector<Piece> pieces;
  for (size_t a = 0; a < archives.size(); ++a) {
    const auto& entries = archives[a]->entries();
    for (size_t e = 0; e < entries.size(); ++e) {
      bytes[a].push_back(archives[a]->read(entries[e]));
      const uint64_t size = bytes[a].back().bytes.size();
      for (uint64_t off = 0; off == 0 || off < size; off += kPieceBytes) {
        pieces.push_back({a, e, off, std::min(kPieceBytes, size - off), 0});
      }
    }
  }
  pool.parallel_for(static_cast<int64_t>(pieces.size()), [&](int64_t i) {
    Piece& p = pieces[static_cast<size_t>(i)];
    p.crc = crc32_of(bytes[p.archive][p.entry].bytes.subspan(p.offset, p.size));
  });
  // Pieces are in entry order: fold each entry's pieces into its CRC.
  for (size_t i = 0; i < pieces.size();) {
    const Piece& first = pieces[i];
    uint32_t crc = first.crc;
    size_t j = i + 1;
    for (;
         j < pieces.size() && pieces[j].archive == first.archive && pieces[j].entry == first.entry;
         ++j) {
      crc = crc32_combine_of(crc, pieces[j].crc, pieces[j].size);
    }
    const ZipArchive& zip = *archives[first.archive];
    const ZipEntry& entry = zip.entries()[first.entry];
    if (crc != entry.crc32) {
      fail(zip.label(), ": record '", entry.name,
           "' fails its CRC-32 check: the file is corrupt (download it again)");
    }
    i = j;
  }
}

}  // namespace cosy
