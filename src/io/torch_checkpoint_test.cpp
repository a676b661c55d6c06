#include "io/torch_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"
#include "io/pickle_writer.h"
#include "io/zip_writer.h"

namespace cosy {
namespace {

Tensor iota(DType dtype, Shape shape) {
  Tensor t = Tensor::zeros(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::F32) t.mutable_data<float>()[i] = static_cast<float>(i) * 0.5F;
    if (dtype == DType::I64) t.mutable_data<int64_t>()[i] = i - 3;
    if (dtype == DType::F16) t.mutable_data<uint16_t>()[i] = float_to_half(static_cast<float>(i));
  }
  return t;
}

TEST(TorchCheckpoint, StateDictRoundTripSharesStoragesAndMapsInPlace) {
  const auto dir = cosy::testing::scratch_dir("ckpt-roundtrip");
  Tensor embed = iota(DType::F32, {4, 3});
  Tensor ids = iota(DType::I64, {5});
  Tensor half = iota(DType::F16, {2, 2});
  save_state_dict(dir / "m.pt", "m",
                  {{"embed.weight", embed}, {"head.weight", embed}, {"ids", ids}, {"h", half}});

  StateDict sd = load_state_dict(dir / "m.pt");
  ASSERT_EQ(sd.names(), (std::vector<std::string>{"embed.weight", "head.weight", "ids", "h"}));
  EXPECT_EQ(sd.at("embed.weight").to_float_vector(), embed.to_float_vector());
  EXPECT_EQ(sd.at("ids").to_int_vector(), ids.to_int_vector());
  EXPECT_EQ(sd.at("h").to_float_vector(), half.to_float_vector());
  EXPECT_EQ(sd.at("h").dtype(), DType::F16);
  // Tied weights were written once and load as one shared, read-only storage.
  EXPECT_EQ(sd.at("embed.weight").raw(), sd.at("head.weight").raw());
  EXPECT_FALSE(sd.at("embed.weight").writable());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(sd.at("ids").raw()) % 64, 0u);
}

TEST(TorchCheckpoint, NestedDictsAndZip64) {
  const auto dir = cosy::testing::scratch_dir("ckpt-nested");
  SaveNode::Entries voice;
  voice.push_back({"embedding", SaveNode::tensor(iota(DType::F32, {1, 8}))});
  SaveNode::Entries root;
  root.push_back({"spk1", SaveNode::dict(voice)});
  save_torch_file(dir / "s.pt", "s", SaveNode::dict(root), /*force_zip64=*/true);
  TorchFile f = TorchFile::open(dir / "s.pt");
  const pickle::Value* emb = f.root()->get("spk1")->get("embedding");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(f.tensor(emb->tensor).to_float_vector(), iota(DType::F32, {1, 8}).to_float_vector());
}

TEST(TorchCheckpoint, StridedViewsAndOffsetsIntoSharedStorage) {
  // Hand-written pickle: two views of one storage, one transposed, one offset.
  const auto dir = cosy::testing::scratch_dir("ckpt-views");
  Tensor store = iota(DType::F32, {6});
  pickle::Writer w;
  w.begin_dict(true);
  w.string("t");
  w.tensor({DType::F32, "0", 6, 0, {3, 2}, {1, 3}});
  w.string("tail");
  w.tensor({DType::F32, "0", 6, 4, {2}, {1}});
  w.end_dict();
  ZipWriter zip(dir / "v.pt");
  zip.add("v/data.pkl", w.finish());
  zip.add("v/data/0", store.bytes());
  zip.finish();
  StateDict sd = load_state_dict(dir / "v.pt");
  EXPECT_EQ(sd.at("t").to_float_vector(), (std::vector<float>{0, 1.5, 0.5, 2, 1, 2.5}));
  EXPECT_EQ(sd.at("tail").to_float_vector(), (std::vector<float>{2, 2.5}));
}

std::string error_of_pickle(const pickle::TensorRecord& rec, size_t storage_bytes) {
  const auto dir = cosy::testing::scratch_dir("ckpt-bad");
  pickle::Writer w;
  w.begin_dict(true);
  w.string("x");
  w.tensor(rec);
  w.end_dict();
  ZipWriter zip(dir / "bad.pt");
  zip.add("bad/data.pkl", w.finish());
  std::string data(storage_bytes, '\0');
  zip.add("bad/data/0", std::string_view(data));
  zip.finish();
  try {
    load_state_dict(dir / "bad.pt");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TorchCheckpoint, ViewsOutsideTheirStorageAreRejected) {
  EXPECT_NE(error_of_pickle({DType::F32, "0", 10, 0, {10}, {1}}, 16).find("holds only 16 bytes"),
            std::string::npos);
  EXPECT_NE(error_of_pickle({DType::F32, "0", 4, 2, {3}, {1}}, 16).find("exceeds its storage"),
            std::string::npos);
  EXPECT_NE(
      error_of_pickle({DType::F32, "0", 4, 0, {2, 2}, {4, 1}}, 16).find("exceeds its storage"),
      std::string::npos);
  EXPECT_NE(error_of_pickle({DType::F32, "1", 4, 0, {4}, {1}}, 16).find("storage '1' is missing"),
            std::string::npos);
  EXPECT_NE(error_of_pickle({DType::F32, "0", 4, 0, {-1}, {1}}, 16).find("negative"),
            std::string::npos);
  EXPECT_NE(error_of_pickle({DType::F32, "0", 4, 0, {2}, {-1}}, 16).find("negative stride"),
            std::string::npos);
}

TEST(TorchCheckpoint, NonTensorValuesAndNonCheckpoints) {
  const auto dir = cosy::testing::scratch_dir("ckpt-kinds");
  pickle::Writer w;
  w.begin_dict(false);
  w.string("epoch");
  w.integer(3);
  w.string("name");
  w.string("oops");
  w.end_dict();
  ZipWriter zip(dir / "k.pt");
  zip.add("k/data.pkl", w.finish());
  zip.finish();
  try {
    load_state_dict(dir / "k.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'name' is a str, not a tensor"), std::string::npos)
        << e.what();
  }
  ZipWriter other(dir / "o.zip");
  other.add("readme.txt", std::string_view("hi"));
  other.finish();
  EXPECT_THROW(load_state_dict(dir / "o.zip"), Error);
  write_whole_file(dir / "legacy.pt", std::string("\x80\x02\x8a\x0a", 4));
  try {
    load_state_dict(dir / "legacy.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy"), std::string::npos);
  }
}

TEST(TorchCheckpoint, EveryFixtureTensorLoads) {
  COSY_NEED_GOLDEN();
  for (const char* name : {"llm.pt", "flow.pt", "hift.pt"}) {
    StateDict sd = load_state_dict(cosy::testing::golden_dir() / "model" / name);
    ASSERT_GT(sd.size(), 0u) << name;
    for (const std::string& n : sd.names()) {
      const Tensor& t = sd.at(n);
      ASSERT_TRUE(is_floating(t.dtype())) << n;
      double sum = 0;
      for (float v : t.to_float_vector()) sum += v;
      EXPECT_TRUE(std::isfinite(sum)) << name << " " << n;
    }
  }
}

}  // namespace
}  // namespace cosy
