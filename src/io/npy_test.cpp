#include "io/npy.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/test_support.h"

namespace cosy {
namespace {

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(copy_blob({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}), "x.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  const auto dir = cosy::testing::scratch_dir("npy");
  for (DType dt :
       {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8, DType::Bool, DType::F16}) {
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{1, 0, 4}}) {
      Tensor t = Tensor::zeros(dt, shape);
      auto* bytes = t.mutable_raw();
      for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = std::byte(i % 2);
      save_npy(dir / "t.npy", t);
      Tensor back = load_npy(dir / "t.npy");
      EXPECT_EQ(back.dtype(), dt);
      EXPECT_EQ(back.shape(), shape);
      EXPECT_TRUE(std::equal(back.bytes().begin(), back.bytes().end(), t.bytes().begin()));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(back.raw()) % 64, 0u);  // mapped in place
    }
  }
}

TEST(Npy, FortranOrderBecomesAStridedView) {
  std::string header = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + char(0) + header;
  for (int32_t v : {0, 3, 1, 4, 2, 5})
    bytes.append(reinterpret_cast<const char*>(&v), 4);  // column-major
  Tensor t = parse_npy(copy_blob({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}),
                       "f.npy");
  EXPECT_EQ(t.to_int_vector(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(Npy, BadInputGivesClearErrors) {
  EXPECT_NE(error_of("hello").find("not an .npy"), std::string::npos);
  EXPECT_NE(error_of(std::string("\x93NUMPY\x09\x00\x00\x00", 10)).find("version"),
            std::string::npos);
  const std::string h = "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n";
  EXPECT_NE(
      error_of(std::string("\x93NUMPY\x01\x00", 8) + char(h.size()) + char(0) + h).find("'<c8'"),
      std::string::npos);
  const std::string h2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }\n";
  EXPECT_NE(error_of(std::string("\x93NUMPY\x01\x00", 8) + char(h2.size()) + char(0) + h2 + "abcd")
                .find("truncated"),
            std::string::npos);
  const std::string h3 = "{'descr': '<f4', 'shape': (1,), }\n";
  EXPECT_NE(
      error_of(std::string("\x93NUMPY\x01\x00", 8) + char(h3.size()) + char(0) + h3).find("lacks"),
      std::string::npos);
  const std::string h4 =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999,), }\n";
  EXPECT_FALSE(
      error_of(std::string("\x93NUMPY\x01\x00", 8) + char(h4.size()) + char(0) + h4).empty());
}

TEST(Npy, EveryFixtureCaseLoads) {
  COSY_NEED_GOLDEN();
  size_t n = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(cosy::testing::golden_dir() / "cases")) {
    if (entry.path().extension() != ".npy") continue;
    Tensor t = load_npy(entry.path());
    EXPECT_EQ(t.nbytes(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype())) << entry.path();
    ++n;
  }
  EXPECT_GT(n, 0u);
}

}  // namespace
}  // namespace cosy
