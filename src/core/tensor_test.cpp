#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace cosy {
namespace {

TEST(Tensor, ZerosIsContiguousAndWritable) {
  Tensor t = Tensor::zeros(DType::F32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_TRUE(t.is_contiguous());
  t.mutable_data<float>()[4] = 2.5F;
  EXPECT_EQ(t.to_float_vector()[4], 2.5F);
}

TEST(Tensor, StridedViewReadsInLogicalOrder) {
  Tensor base = Tensor::zeros(DType::I32, {2, 3});
  for (int i = 0; i < 6; ++i) base.mutable_data<int32_t>()[i] = i;
  // Transposed view: shape [3, 2], strides [1, 3].
  Tensor t(DType::I32, {3, 2}, {1, 3}, base.mutable_raw(), nullptr, false);
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.to_int_vector(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_int_vector(), t.to_int_vector());
  EXPECT_THROW(t.mutable_raw(), Error);
}

TEST(Tensor, ShapeChecks) {
  EXPECT_THROW(shape_numel({2, -1}), Error);
  EXPECT_THROW(shape_numel({1LL << 40, 1LL << 40}), Error);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_str({2, 64}), "[2, 64]");
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_THROW(contiguous_strides({0, 1LL << 40, 1LL << 40}),
               Error);  // empty, but strides overflow
}

TEST(Tensor, HalfConversionsRoundTrip) {
  for (float f : {0.0F, 1.0F, -2.5F, 65504.0F, 6.1035156e-05F, 5.9604645e-08F}) {
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  }
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0F);
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6F))));
}

// The bulk conversion rounds exactly as the scalar one, in the vector body and the tail.
TEST(Tensor, BulkHalfConversionEqualsScalar) {
  std::vector<float> in = {0.0F,           -0.0F,
                           1.0F,           -2.5F,
                           65504.0F,       65520.0F,
                           1e6F,           -1e6F,
                           1e-8F,          5.9604645e-08F,
                           6.1035156e-05F, 0.1F,
                           -0.3333F,       std::numeric_limits<float>::infinity(),
                           3.14159F,       2.0009765F};
  for (int i = 0; i < 200; ++i)
    in.push_back(std::ldexp(static_cast<float>(i % 97) - 48.3F, i % 40 - 30));
  std::vector<uint16_t> out(in.size());
  floats_to_halves(in.data(), out.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], float_to_half(in[i])) << in[i];
}

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::Bool}) {
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  }
  EXPECT_FALSE(dtype_from_name("complex").has_value());
}

}  // namespace
}  // namespace cosy

namespace cosy {
namespace {
TEST(Transpose2d, SwapsRowsAndColumnsAndChecksTheSize) {
  const std::vector<float> m = {1, 2, 3, 4, 5, 6};  // 2 x 3
  EXPECT_EQ(transpose_2d(m, 2, 3), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_THROW(transpose_2d(m, 4, 2), Error);
}
}  // namespace
}  // namespace cosy
