#include "io/ref_expression.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cosy {
namespace {

int64_t as_int(std::string_view e) { return std::get<int64_t>(evaluate_arithmetic(e).value()); }
double as_real(std::string_view e) { return std::get<double>(evaluate_arithmetic(e).value()); }

TEST(RefExpression, PythonIntegerSemantics) {
  EXPECT_EQ(as_int("25 * 2"), 50);
  EXPECT_EQ(as_int("1 + 2 * 3"), 7);
  EXPECT_EQ(as_int("(1 + 2) * 3"), 9);
  EXPECT_EQ(as_int("-7 // 2"), -4);  // floor division
  EXPECT_EQ(as_int("-7 % 3"), 2);
  EXPECT_EQ(as_int("2 ** 3 ** 2"), 512);  // right-associative
  EXPECT_EQ(as_int("-2 ** 2"), -4);
}

TEST(RefExpression, TrueDivisionAndFloats) {
  EXPECT_DOUBLE_EQ(as_real("7 / 2"), 3.5);
  EXPECT_DOUBLE_EQ(as_real("1e-06 * 2"), 2e-06);
  EXPECT_DOUBLE_EQ(as_real("0.5 + 1"), 1.5);
}

TEST(RefExpression, NonArithmeticIsNotAnError) {
  EXPECT_FALSE(evaluate_arithmetic("data/train.list").has_value());
  EXPECT_FALSE(evaluate_arithmetic("abc").has_value());
  EXPECT_FALSE(evaluate_arithmetic("(1 + 2").has_value());
  EXPECT_FALSE(evaluate_arithmetic("").has_value());
  EXPECT_FALSE(
      evaluate_arithmetic(std::string(200, '(') + "1" + std::string(200, ')')).has_value());
}

TEST(RefExpression, ArithmeticErrorsThrow) {
  EXPECT_THROW(evaluate_arithmetic("1 / 0"), Error);
  EXPECT_THROW(evaluate_arithmetic("1 // 0"), Error);
  EXPECT_THROW(evaluate_arithmetic("9223372036854775807 + 1"), Error);
  EXPECT_THROW(evaluate_arithmetic("3 ** 100"), Error);
}

}  // namespace
}  // namespace cosy
