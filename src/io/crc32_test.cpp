#include "io/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"
#include "core/thread_pool.h"
#include "io/zip_reader.h"
#include "io/zip_verify.h"
#include "io/zip_writer.h"

namespace cosy {
namespace {

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(rng());
  return v;
}

// The fast CRC is zlib's CRC-32 exactly: whole, chained and combined.
TEST(Crc32, MatchesZlibWholeChainedAndCombined) {
  for (const size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{64}, size_t{1000}, size_t{70001}}) {
    const auto bytes = random_bytes(n, uint32_t(n));
    const uint32_t want =
        uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), uInt(n)));
    EXPECT_EQ(crc32_of(bytes), want) << n;
    const size_t cut = n / 3;
    const std::span<const std::byte> all(bytes);
    EXPECT_EQ(crc32_of(all.subspan(cut), crc32_of(all.first(cut))), want) << n;
    EXPECT_EQ(crc32_combine_of(crc32_of(all.first(cut)), crc32_of(all.subspan(cut)), n - cut), want)
        << n;
  }
}

Blob blob_of(std::vector<std::byte> bytes) {
  auto owned = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  return Blob{std::span<const std::byte>(owned->data(), owned->size()), owned};
}

// Entries larger than a piece are checked piece by piece on the pool; one flipped byte in
// any piece names its record.
TEST(ZipVerify, FindsAFlippedByteInAnyPieceOfAnyRecord) {
  ThreadPool pool(3);
  const auto path = cosy::testing::scratch_dir("zip-verify") / "a.zip";
  const auto big = random_bytes((size_t{40} << 20) + 123, 1);  // three 16 MiB pieces
  {
    ZipWriter w(path);
    w.add("m/data/0", big);
    w.add("m/data/1", random_bytes(5000, 2));
    w.add("m/data/2", std::span<const std::byte>());
    w.finish();
  }
  const std::string text = read_whole_file(path);
  std::vector<std::byte> archive(text.size());
  std::memcpy(archive.data(), text.data(), text.size());
  const auto good = std::make_shared<const ZipArchive>(blob_of(archive), "good.pt");
  EXPECT_NO_THROW(verify_zip_entries({good}, pool));
  for (const auto& [record, at] :
       std::vector<std::pair<std::string, size_t>>{{"m/data/0", 5},
                                                   {"m/data/0", (size_t{17} << 20) + 9},
                                                   {"m/data/0", big.size() - 1},
                                                   {"m/data/1", 4999}}) {
    std::vector<std::byte> bad = archive;
    bad[size_t(good->find(record)->data_offset + at)] ^= std::byte{0x40};
    const auto zip = std::make_shared<const ZipArchive>(blob_of(bad), "bad.pt");
    try {
      verify_zip_entries({good, zip}, pool);
      ADD_FAILURE() << record << " @" << at << " passed";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                "bad.pt: record '" + record +
                    "' fails its CRC-32 check: the file is corrupt (download it again)");
    }
  }
}

}  // namespace
}  // namespace cosy
