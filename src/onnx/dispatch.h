// Calls a generic lambda with a value of the C++ type behind a DType, for the type sets
// the operators accept; other types are refused as Unsupported naming the operator.
#pragma once

#include <cstdint>

#include "onnx/op_kernel.h"

namespace cosy::onnx {

template <typename Fn>
decltype(auto) dispatch_float(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32:
      return fn(float{});
    case DType::F64:
      return fn(double{});
    default:
      unsupported_type(op, t);
  }
}

template <typename Fn>
decltype(auto) dispatch_numeric(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32:
      return fn(float{});
    case DType::F64:
      return fn(double{});
    case DType::I64:
      return fn(int64_t{});
    case DType::I32:
      return fn(int32_t{});
    case DType::I16:
      return fn(int16_t{});
    case DType::I8:
      return fn(int8_t{});
    case DType::U8:
      return fn(uint8_t{});
    default:
      unsupported_type(op, t);
  }
}

// Numeric types and bool.
template <typename Fn>
decltype(auto) dispatch_all(DType t, const char* op, Fn&& fn) {
  if (t == DType::Bool) return fn(bool{});
  return dispatch_numeric(t, op, std::forward<Fn>(fn));
}

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::F32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::F64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::I64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::I32;
  else if constexpr (std::is_same_v<T, int16_t>)
    return DType::I16;
  else if constexpr (std::is_same_v<T, int8_t>)
    return DType::I8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::U8;
  else
    return DType::Bool;
}

// The type of input i, which the graph checks is present before kernels see it.
inline DType input_type(InputTypes in, size_t i, const char* op) {
  if (i >= in.size() || !in[i]) fail(op, ": input ", i, " is required");
  return *in[i];
}

}  // namespace cosy::onnx
