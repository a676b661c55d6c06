#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"
#include "io/crc32.h"
#include "io/mapped_file.h"
#include "io/zip_reader.h"
#include "io/zip_writer.h"

namespace cosy {
namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string write_archive(const std::filesystem::path& path, bool zip64) {
  ZipWriter w(path, {64, zip64});
  w.add("a/data.pkl", std::string_view("hello"));
  std::string big(10000, 'x');
  w.add("a/data/0", as_bytes(big));
  w.add("a/version", std::string_view("3\n"));
  w.finish();
  return big;
}

class ZipRoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(ZipRoundTrip, StoredEntriesAreAlignedAndZeroCopy) {
  const auto dir = cosy::testing::scratch_dir(GetParam() ? "zip64" : "zip32");
  const std::string big = write_archive(dir / "t.zip", GetParam());
  Blob file = map_file(dir / "t.zip");
  ZipArchive zip(file, "t.zip");
  ASSERT_EQ(zip.entries().size(), 3u);
  const ZipEntry* e = zip.find("a/data/0");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->data_offset % 64, 0u);
  Blob data = zip.read_verified(*e);
  EXPECT_EQ(data.text(), big);
  EXPECT_EQ(data.bytes.data(), file.bytes.data() + e->data_offset);  // zero copy
  EXPECT_EQ(zip.read(*zip.find("a/data.pkl")).text(), "hello");
  EXPECT_EQ(zip.find("nope"), nullptr);
}
INSTANTIATE_TEST_SUITE_P(Zip, ZipRoundTrip, ::testing::Values(false, true));

std::string error_of(const std::string& bytes) {
  try {
    Blob b = copy_blob(as_bytes(bytes));
    ZipArchive zip(b, "bad.zip");
    for (const auto& e : zip.entries()) zip.read_verified(e);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ZipReader, TruncationAtAnyPointIsAnError) {
  const auto dir = cosy::testing::scratch_dir("zip-trunc");
  write_archive(dir / "t.zip", false);
  const std::string full = read_whole_file(dir / "t.zip");
  for (size_t cut : {size_t{0}, size_t{10}, full.size() / 2, full.size() - 30, full.size() - 1}) {
    const std::string msg = error_of(full.substr(0, cut));
    EXPECT_NE(msg.find("bad.zip"), std::string::npos) << cut;
  }
}

TEST(ZipReader, CorruptDataFailsItsCrc) {
  const auto dir = cosy::testing::scratch_dir("zip-crc");
  write_archive(dir / "t.zip", false);
  std::string bytes = read_whole_file(dir / "t.zip");
  const size_t pos = bytes.find(std::string(100, 'x'));
  bytes[pos + 50] = 'y';
  EXPECT_NE(error_of(bytes).find("CRC-32"), std::string::npos);
}

TEST(ZipReader, CorruptCentralDirectoryIsAnError) {
  const auto dir = cosy::testing::scratch_dir("zip-cd");
  write_archive(dir / "t.zip", true);
  std::string bytes = read_whole_file(dir / "t.zip");
  const size_t cd = bytes.find("PK\x01\x02");
  bytes[cd + 3] = 9;
  EXPECT_NE(error_of(bytes).find("corrupt central directory"), std::string::npos);
  EXPECT_NE(error_of("PK\x05\x06 not really").find("bad.zip"), std::string::npos);
}

// A deflated entry, built by hand: torch never writes these, repacked archives may.
TEST(ZipReader, InflatesDeflatedEntries) {
  const std::string payload(5000, 'z');
  std::string packed(compressBound(payload.size()) + 64, '\0');
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  zs.avail_in = static_cast<uInt>(payload.size());
  zs.next_out = reinterpret_cast<Bytef*>(packed.data());
  zs.avail_out = static_cast<uInt>(packed.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  packed.resize(zs.total_out);
  deflateEnd(&zs);

  const std::string name = "d";
  const uint32_t crc = crc32_of(as_bytes(payload));
  auto le = [](std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  std::string z;
  le(z, 0x04034b50, 4);
  le(z, 20, 2);
  le(z, 0, 2);
  le(z, 8, 2);
  le(z, 0, 4);
  le(z, crc, 4);
  le(z, packed.size(), 4);
  le(z, payload.size(), 4);
  le(z, name.size(), 2);
  le(z, 0, 2);
  z += name + packed;
  const size_t cd = z.size();
  le(z, 0x02014b50, 4);
  le(z, 20, 2);
  le(z, 20, 2);
  le(z, 0, 2);
  le(z, 8, 2);
  le(z, 0, 4);
  le(z, crc, 4);
  le(z, packed.size(), 4);
  le(z, payload.size(), 4);
  le(z, name.size(), 2);
  le(z, 0, 2);
  le(z, 0, 2);
  le(z, 0, 2);
  le(z, 0, 2);
  le(z, 0, 4);
  le(z, 0, 4);
  z += name;
  const size_t cd_size = z.size() - cd;
  le(z, 0x06054b50, 4);
  le(z, 0, 2);
  le(z, 0, 2);
  le(z, 1, 2);
  le(z, 1, 2);
  le(z, cd_size, 4);
  le(z, cd, 4);
  le(z, 0, 2);

  ZipArchive zip(copy_blob(as_bytes(z)), "deflate.zip");
  EXPECT_EQ(zip.read_verified(zip.entries().at(0)).text(), payload);

  std::string broken = z;
  broken[30 + name.size() + 2] ^= 0x55;  // damage the deflate stream
  EXPECT_FALSE(error_of(broken).empty());
}

TEST(ZipReader, OpensEveryFixtureCheckpoint) {
  COSY_NEED_GOLDEN();
  for (const char* f : {"llm.pt", "flow.pt", "hift.pt"}) {
    ZipArchive zip(map_file(cosy::testing::golden_dir() / "model" / f), f);
    EXPECT_GT(zip.entries().size(), 2u);
    for (const auto& e : zip.entries()) EXPECT_NO_THROW(zip.read_verified(e)) << e.name;
  }
}

TEST(MappedFile, MissingFileNamesThePath) {
  try {
    map_file("/nonexistent/x.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.pt: cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace cosy
