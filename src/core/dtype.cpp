#include "core/dtype.h"

#include <array>

namespace cosy {
namespace {

struct DTypeInfo {
  DType type;
  size_t size;
  std::string_view name;
  bool floating;
};

constexpr std::array<DTypeInfo, 10> kInfo = {{
    {DType::F32, 4, "f32", true},
    {DType::F64, 8, "f64", true},
    {DType::F16, 2, "f16", true},
    {DType::BF16, 2, "bf16", true},
    {DType::I64, 8, "i64", false},
    {DType::I32, 4, "i32", false},
    {DType::I16, 2, "i16", false},
    {DType::I8, 1, "i8", false},
    {DType::U8, 1, "u8", false},
    {DType::Bool, 1, "bool", false},
}};

const DTypeInfo& info(DType t) { return kInfo[static_cast<size_t>(t)]; }

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
bool is_floating(DType t) { return info(t).floating; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo) {
    if (i.name == name) return i.type;
  }
  return std::nullopt;
}

}  // namespace cosy
