// Elementwise operators: unary math, broadcasting binary arithmetic, comparisons and
// logic, the variadic Max/Min/Sum/Mean, Pow, Where, Clip and Cast.
#include <cmath>
#include <cstring>
#include <limits>

#include "onnx/broadcast.h"
#include "onnx/dispatch.h"
#include "onnx/op_registry.h"
#include "onnx/tensor_proto.h"

namespace cosy::onnx {
namespace {

template <typename T, typename R, typename F>
void map_values(ThreadPool& pool, const T* x, R* y, int64_t n, F f) {
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  };
  if (n < 65536) {
    body(0, n);
  } else {
    pool.parallel_range(n, 16384, body);
  }
}

// out[i] = f(a[i'], b[i'']) over the broadcast of a and b.
template <typename T, typename R, typename F>
void zip_values(ThreadPool& pool, const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.mutable_data<R>();
  const int64_t n = out.numel();
  if (a.shape() == b.shape()) {
    auto body = [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    };
    n < 65536 ? body(0, n) : pool.parallel_range(n, 16384, body);
    return;
  }
  if (b.numel() == 1 && a.numel() == n) {
    const T y = pb[0];
    auto body = [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], y);
    };
    n < 65536 ? body(0, n) : pool.parallel_range(n, 16384, body);
    return;
  }
  std::array<Shape, 2> st{broadcast_strides(a.shape(), out.shape()),
                          broadcast_strides(b.shape(), out.shape())};
  for_each_row<2>(pool, out.shape(), st,
                  [&](int64_t o, const auto& offs, const auto& steps, int64_t len) {
                    const T* x = pa + offs[0];
                    const T* y = pb + offs[1];
                    R* z = po + o;
                    if (steps[0] == 1 && steps[1] == 1) {
                      for (int64_t i = 0; i < len; ++i) z[i] = f(x[i], y[i]);
                    } else if (steps[0] == 1 && steps[1] == 0) {
                      const T yv = *y;
                      for (int64_t i = 0; i < len; ++i) z[i] = f(x[i], yv);
                    } else if (steps[0] == 0 && steps[1] == 1) {
                      const T xv = *x;
                      for (int64_t i = 0; i < len; ++i) z[i] = f(xv, y[i]);
                    } else {
                      for (int64_t i = 0; i < len; ++i) z[i] = f(x[i * steps[0]], y[i * steps[1]]);
                    }
                  });
}

// ---------------------------------------------------------------- unary

enum class Unary {
  Abs,
  Neg,
  Sign,
  Relu,
  Not,
  Sqrt,
  Exp,
  Log,
  Erf,
  Tanh,
  Sigmoid,
  Reciprocal,
  Floor,
  Ceil,
  Round,
  Sin,
  Cos,
  Tan,
  Asin,
  Acos,
  Atan,
  Sinh,
  Cosh,
  Asinh,
  Acosh,
  Atanh,
  Softplus,
  Softsign,
  Elu,
  Selu,
  LeakyRelu,
  HardSigmoid,
  HardSwish,
  ThresholdedRelu,
  Celu,
  Mish
};

enum class TypeSet { Float, Numeric, Bool };

class UnaryKernel final : public OpKernel {
 public:
  UnaryKernel(const char* name, Unary op, TypeSet types, float alpha = 0, float beta = 0,
              float gamma = 0)
      : name_(name), op_(op), types_(types), alpha_(alpha), beta_(beta), gamma_(gamma) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, name_);
    const bool ok = types_ == TypeSet::Bool    ? t == DType::Bool
                    : types_ == TypeSet::Float ? is_float_type(t)
                                               : (is_float_type(t) || is_int_type(t));
    if (!ok) unsupported_type(name_, t);
    return {t};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    out[0] = new_tensor(x.dtype(), x.shape());
    if (op_ == Unary::Not) {
      map_values(ctx.pool, x.data<bool>(), out[0].mutable_data<bool>(), x.numel(),
                 [](bool v) { return !v; });
      return;
    }
    dispatch_numeric(x.dtype(), name_, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        apply_float<T>(ctx, x, out[0]);
      } else {
        apply_int<T>(ctx, x, out[0]);
      }
    });
  }

 private:
  template <typename T>
  void apply_int(RunContext& ctx, const Tensor& x, Tensor& y) const {
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    const int64_t n = x.numel();
    switch (op_) {
      case Unary::Abs:
        map_values(ctx.pool, px, py, n, [](T v) { return static_cast<T>(v < 0 ? -v : v); });
        break;
      case Unary::Neg:
        map_values(ctx.pool, px, py, n, [](T v) { return static_cast<T>(-v); });
        break;
      case Unary::Sign:
        map_values(ctx.pool, px, py, n,
                   [](T v) { return static_cast<T>(v > 0 ? 1 : (v < 0 ? -1 : 0)); });
        break;
      case Unary::Relu:
        map_values(ctx.pool, px, py, n, [](T v) { return v > 0 ? v : T{0}; });
        break;
      default:
        unsupported_type(name_, x.dtype());
    }
  }

  template <typename T>
  void apply_float(RunContext& ctx, const Tensor& x, Tensor& y) const {
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    const int64_t n = x.numel();
    const T a = static_cast<T>(alpha_);
    const T b = static_cast<T>(beta_);
    const T g = static_cast<T>(gamma_);
    auto m = [&](auto f) { map_values(ctx.pool, px, py, n, f); };
    switch (op_) {
      case Unary::Abs:
        m([](T v) { return std::fabs(v); });
        break;
      case Unary::Neg:
        m([](T v) { return -v; });
        break;
      case Unary::Sign:
        m([](T v) { return static_cast<T>(v > 0 ? 1 : (v < 0 ? -1 : 0)); });
        break;
      case Unary::Relu:
        m([](T v) { return v > 0 ? v : T{0}; });
        break;
      case Unary::Sqrt:
        m([](T v) { return std::sqrt(v); });
        break;
      case Unary::Exp:
        m([](T v) { return std::exp(v); });
        break;
      case Unary::Log:
        m([](T v) { return std::log(v); });
        break;
      case Unary::Erf:
        m([](T v) { return std::erf(v); });
        break;
      case Unary::Tanh:
        m([](T v) { return std::tanh(v); });
        break;
      case Unary::Sigmoid:
        m([](T v) {
          return v >= 0 ? T{1} / (T{1} + std::exp(-v)) : std::exp(v) / (T{1} + std::exp(v));
        });
        break;
      case Unary::Reciprocal:
        m([](T v) { return T{1} / v; });
        break;
      case Unary::Floor:
        m([](T v) { return std::floor(v); });
        break;
      case Unary::Ceil:
        m([](T v) { return std::ceil(v); });
        break;
      case Unary::Round:
        m([](T v) { return std::nearbyint(v); });
        break;  // half to even
      case Unary::Sin:
        m([](T v) { return std::sin(v); });
        break;
      case Unary::Cos:
        m([](T v) { return std::cos(v); });
        break;
      case Unary::Tan:
        m([](T v) { return std::tan(v); });
        break;
      case Unary::Asin:
        m([](T v) { return std::asin(v); });
        break;
      case Unary::Acos:
        m([](T v) { return std::acos(v); });
        break;
      case Unary::Atan:
        m([](T v) { return std::atan(v); });
        break;
      case Unary::Sinh:
        m([](T v) { return std::sinh(v); });
        break;
      case Unary::Cosh:
        m([](T v) { return std::cosh(v); });
        break;
      case Unary::Asinh:
        m([](T v) { return std::asinh(v); });
        break;
      case Unary::Acosh:
        m([](T v) { return std::acosh(v); });
        break;
      case Unary::Atanh:
        m([](T v) { return std::atanh(v); });
        break;
      case Unary::Softplus:
        m([](T v) { return v > 20 ? v : std::log1p(std::exp(v)); });
        break;
      case Unary::Softsign:
        m([](T v) { return v / (T{1} + std::fabs(v)); });
        break;
      case Unary::Elu:
        m([a](T v) { return v >= 0 ? v : a * (std::exp(v) - T{1}); });
        break;
      case Unary::Selu:
        m([a, g](T v) { return v > 0 ? g * v : g * (a * std::exp(v) - a); });
        break;
      case Unary::LeakyRelu:
        m([a](T v) { return v >= 0 ? v : a * v; });
        break;
      case Unary::HardSigmoid:
        m([a, b](T v) { return std::max(T{0}, std::min(T{1}, a * v + b)); });
        break;
      case Unary::HardSwish:
        m([](T v) { return v * std::max(T{0}, std::min(T{1}, v / T{6} + T{0.5})); });
        break;
      case Unary::ThresholdedRelu:
        m([a](T v) { return v > a ? v : T{0}; });
        break;
      case Unary::Celu:
        m([a](T v) { return std::max(T{0}, v) + std::min(T{0}, a * (std::exp(v / a) - T{1})); });
        break;
      case Unary::Mish:
        m([](T v) { return v * std::tanh(v > 20 ? v : std::log1p(std::exp(v))); });
        break;
      case Unary::Not:
        break;
    }
  }

  const char* name_;
  Unary op_;
  TypeSet types_;
  float alpha_, beta_, gamma_;
};

template <Unary op, TypeSet types>
std::unique_ptr<OpKernel> make_unary(NodeBuild& b) {
  static const std::string name = b.op_type();
  switch (op) {
    case Unary::Elu:
    case Unary::Celu:
    case Unary::ThresholdedRelu:
      return std::make_unique<UnaryKernel>(name.c_str(), op, types,
                                           b.attrs().get_float("alpha", 1.0f));
    case Unary::LeakyRelu:
      return std::make_unique<UnaryKernel>(name.c_str(), op, types,
                                           b.attrs().get_float("alpha", 0.01f));
    case Unary::Selu:
      return std::make_unique<UnaryKernel>(
          name.c_str(), op, types, b.attrs().get_float("alpha", 1.67326319217681884765625f), 0,
          b.attrs().get_float("gamma", 1.05070102214813232421875f));
    case Unary::HardSigmoid:
      return std::make_unique<UnaryKernel>(name.c_str(), op, types,
                                           b.attrs().get_float("alpha", 0.2f),
                                           b.attrs().get_float("beta", 0.5f));
    default:
      return std::make_unique<UnaryKernel>(name.c_str(), op, types);
  }
}

// ---------------------------------------------------------------- IsNaN / IsInf

class FloatTestKernel final : public OpKernel {
 public:
  FloatTestKernel(bool is_nan, bool negative, bool positive)
      : is_nan_(is_nan), negative_(negative), positive_(positive) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "IsNaN");
    if (!is_float_type(t)) unsupported_type(is_nan_ ? "IsNaN" : "IsInf", t);
    return {DType::Bool};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    out[0] = new_tensor(DType::Bool, x.shape());
    dispatch_float(x.dtype(), "IsNaN", [&](auto tag) {
      using T = decltype(tag);
      map_values(ctx.pool, x.data<T>(), out[0].mutable_data<bool>(), x.numel(), [this](T v) {
        if (is_nan_) return std::isnan(v);
        return std::isinf(v) && ((v > 0 && positive_) || (v < 0 && negative_));
      });
    });
  }

 private:
  bool is_nan_, negative_, positive_;
};

std::unique_ptr<OpKernel> make_isnan(NodeBuild&) {
  return std::make_unique<FloatTestKernel>(true, false, false);
}
std::unique_ptr<OpKernel> make_isinf(NodeBuild& b) {
  return std::make_unique<FloatTestKernel>(false, b.attrs().get_int("detect_negative", 1) != 0,
                                           b.attrs().get_int("detect_positive", 1) != 0);
}

// ---------------------------------------------------------------- binary

enum class Binary {
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  FMod,
  Max,
  Min,
  Equal,
  Less,
  LessEq,
  Greater,
  GreaterEq,
  And,
  Or,
  Xor,
  PRelu
};

bool is_comparison(Binary op) {
  return op == Binary::Equal || op == Binary::Less || op == Binary::LessEq ||
         op == Binary::Greater || op == Binary::GreaterEq;
}
bool is_logic(Binary op) { return op == Binary::And || op == Binary::Or || op == Binary::Xor; }

template <typename T>
T checked_div(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) fail("integer division by zero");
    if constexpr (std::is_signed_v<T>) {
      if (x == std::numeric_limits<T>::min() && y == -1) fail("integer division overflows");
    }
  }
  return static_cast<T>(x / y);
}

template <typename T>
T python_mod(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) fail("integer modulo by zero");
    if constexpr (std::is_signed_v<T>) {
      if (y == -1) return 0;
    }
    T r = static_cast<T>(x % y);
    if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
    return r;
  } else {
    T r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  }
}

template <typename T>
T c_mod(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) fail("integer modulo by zero");
    if constexpr (std::is_signed_v<T>) {
      if (y == -1) return 0;
    }
    return static_cast<T>(x % y);
  } else {
    return std::fmod(x, y);
  }
}

// Applies `op` to a and b (already the same type T) into `out`.
template <typename T>
void binary_apply(ThreadPool& pool, Binary op, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (op) {
    case Binary::Add:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return static_cast<T>(x + y); });
      break;
    case Binary::Sub:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return static_cast<T>(x - y); });
      break;
    case Binary::Mul:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return static_cast<T>(x * y); });
      break;
    case Binary::Div:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return checked_div(x, y); });
      break;
    case Binary::Mod:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return python_mod(x, y); });
      break;
    case Binary::FMod:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) { return c_mod(x, y); });
      break;
    case Binary::Max:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        }
        return x > y ? x : y;
      });
      break;
    case Binary::Min:
      zip_values<T, T>(pool, a, b, out, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        }
        return x < y ? x : y;
      });
      break;
    case Binary::PRelu:
      zip_values<T, T>(pool, a, b, out, [](T x, T s) { return x < 0 ? static_cast<T>(s * x) : x; });
      break;
    case Binary::Equal:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x == y; });
      break;
    case Binary::Less:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x < y; });
      break;
    case Binary::LessEq:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x <= y; });
      break;
    case Binary::Greater:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x > y; });
      break;
    case Binary::GreaterEq:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x >= y; });
      break;
    case Binary::And:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x && y; });
      break;
    case Binary::Or:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x || y; });
      break;
    case Binary::Xor:
      zip_values<T, bool>(pool, a, b, out, [](T x, T y) { return x != y; });
      break;
  }
}

class BinaryKernel final : public OpKernel {
 public:
  BinaryKernel(const char* name, Binary op) : name_(name), op_(op) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType a = input_type(in, 0, name_);
    const DType b = input_type(in, 1, name_);
    if (a != b)
      fail(name_, ": inputs have different types (", dtype_name(a), ", ", dtype_name(b), ")");
    if (is_logic(op_)) {
      if (a != DType::Bool) unsupported_type(name_, a);
      return {DType::Bool};
    }
    const bool bool_ok = op_ == Binary::Equal;
    if (!(is_float_type(a) || is_int_type(a) || (bool_ok && a == DType::Bool)))
      unsupported_type(name_, a);
    if ((op_ == Binary::PRelu) && !is_float_type(a)) unsupported_type(name_, a);
    return {is_comparison(op_) ? DType::Bool : a};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    Shape shape = broadcast_shapes(a.shape(), b.shape());
    if (op_ == Binary::PRelu && shape != a.shape()) {
      fail("PRelu: slope ", shape_str(b.shape()), " does not broadcast to ", shape_str(a.shape()));
    }
    out[0] = new_tensor(is_comparison(op_) || is_logic(op_) ? DType::Bool : a.dtype(), shape);
    dispatch_all(a.dtype(), name_, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        if (!is_logic(op_) && op_ != Binary::Equal) unsupported_type(name_, a.dtype());
        binary_apply<T>(ctx.pool, op_, a, b, out[0]);
      } else {
        binary_apply<T>(ctx.pool, op_, a, b, out[0]);
      }
    });
  }

 private:
  const char* name_;
  Binary op_;
};

template <Binary op>
std::unique_ptr<OpKernel> make_binary(NodeBuild& b) {
  static const std::string name = b.op_type();
  if constexpr (op == Binary::Mod) {
    if (b.attrs().get_int("fmod", 0) != 0)
      return std::make_unique<BinaryKernel>("Mod", Binary::FMod);
  }
  return std::make_unique<BinaryKernel>(name.c_str(), op);
}

// Max, Min, Sum, Mean: a left fold of the binary op over 1..N inputs.
class VariadicKernel final : public OpKernel {
 public:
  VariadicKernel(const char* name, Binary op, bool mean) : name_(name), op_(op), mean_(mean) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, name_);
    for (size_t i = 1; i < in.size(); ++i) {
      if (input_type(in, i, name_) != t) fail(name_, ": inputs have different types");
    }
    if (!(is_float_type(t) || (is_int_type(t) && !mean_))) unsupported_type(name_, t);
    return {t};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    Tensor acc = *in[0];
    if (in.size() == 1) acc = copy(acc);
    for (size_t i = 1; i < in.size(); ++i) {
      Tensor next = new_tensor(acc.dtype(), broadcast_shapes(acc.shape(), in[i]->shape()));
      dispatch_numeric(acc.dtype(), name_, [&](auto tag) {
        binary_apply<decltype(tag)>(ctx.pool, op_, acc, *in[i], next);
      });
      acc = std::move(next);
    }
    if (mean_) {
      dispatch_float(acc.dtype(), name_, [&](auto tag) {
        using T = decltype(tag);
        T* p = acc.mutable_data<T>();
        for (int64_t i = 0; i < acc.numel(); ++i) p[i] /= static_cast<T>(in.size());
      });
    }
    out[0] = std::move(acc);
  }

 private:
  static Tensor copy(const Tensor& t) {
    Tensor c = new_tensor(t.dtype(), t.shape());
    if (t.nbytes() > 0) std::memcpy(c.mutable_raw(), t.raw(), t.nbytes());
    return c;
  }
  const char* name_;
  Binary op_;
  bool mean_;
};

std::unique_ptr<OpKernel> make_max(NodeBuild&) {
  return std::make_unique<VariadicKernel>("Max", Binary::Max, false);
}
std::unique_ptr<OpKernel> make_min(NodeBuild&) {
  return std::make_unique<VariadicKernel>("Min", Binary::Min, false);
}
std::unique_ptr<OpKernel> make_sum(NodeBuild&) {
  return std::make_unique<VariadicKernel>("Sum", Binary::Add, false);
}
std::unique_ptr<OpKernel> make_mean(NodeBuild&) {
  return std::make_unique<VariadicKernel>("Mean", Binary::Add, true);
}

// ---------------------------------------------------------------- Pow

// Reads element i of a numeric tensor as double.
double load_as_double(const Tensor& t, int64_t i) {
  return dispatch_numeric(
      t.dtype(), "Pow", [&](auto tag) { return static_cast<double>(t.data<decltype(tag)>()[i]); });
}

class PowKernel final : public OpKernel {
 public:
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType x = input_type(in, 0, "Pow");
    const DType y = input_type(in, 1, "Pow");
    for (DType t : {x, y}) {
      if (!(t == DType::F32 || t == DType::F64 || t == DType::I32 || t == DType::I64))
        unsupported_type("Pow", t);
    }
    return {x};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const Tensor& y = *in[1];
    Shape shape = broadcast_shapes(x.shape(), y.shape());
    out[0] = new_tensor(x.dtype(), shape);
    if (x.dtype() == DType::F32 && y.dtype() == DType::F32) {
      zip_values<float, float>(ctx.pool, x, y, out[0], [](float a, float b) {
        return b == 2.0f ? a * a : (b == 0.5f ? std::sqrt(a) : std::pow(a, b));
      });
      return;
    }
    std::array<Shape, 2> st{broadcast_strides(x.shape(), shape),
                            broadcast_strides(y.shape(), shape)};
    dispatch_numeric(x.dtype(), "Pow", [&](auto tag) {
      using T = decltype(tag);
      T* po = out[0].mutable_data<T>();
      for_each_row<2>(ctx.pool, shape, st,
                      [&](int64_t o, const auto& offs, const auto& steps, int64_t n) {
                        for (int64_t i = 0; i < n; ++i) {
                          const double r = std::pow(load_as_double(x, offs[0] + i * steps[0]),
                                                    load_as_double(y, offs[1] + i * steps[1]));
                          po[o + i] = static_cast<T>(r);
                        }
                      });
    });
  }
};

std::unique_ptr<OpKernel> make_pow(NodeBuild&) { return std::make_unique<PowKernel>(); }

// ---------------------------------------------------------------- Where (any element type)

class WhereKernel final : public OpKernel {
 public:
  std::vector<DType> infer_types(InputTypes in) const override {
    if (input_type(in, 0, "Where") != DType::Bool) fail("Where: the condition must be bool");
    const DType x = input_type(in, 1, "Where");
    if (input_type(in, 2, "Where") != x) fail("Where: X and Y have different types");
    return {x};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& c = *in[0];
    const Tensor& x = *in[1];
    const Tensor& y = *in[2];
    Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), x.shape()), y.shape());
    out[0] = new_tensor(x.dtype(), shape);
    const size_t es = dtype_size(x.dtype());
    std::array<Shape, 3> st{broadcast_strides(c.shape(), shape),
                            broadcast_strides(x.shape(), shape),
                            broadcast_strides(y.shape(), shape)};
    const bool* pc = c.data<bool>();
    const std::byte* px = x.raw();
    const std::byte* py = y.raw();
    std::byte* po = out[0].mutable_raw();
    for_each_row<3>(
        ctx.pool, shape, st, [&](int64_t o, const auto& offs, const auto& steps, int64_t n) {
          for (int64_t i = 0; i < n; ++i) {
            const bool pick = pc[offs[0] + i * steps[0]];
            const std::byte* src =
                pick ? px + (offs[1] + i * steps[1]) * es : py + (offs[2] + i * steps[2]) * es;
            std::memcpy(po + (o + i) * es, src, es);
          }
        });
  }
};

std::unique_ptr<OpKernel> make_where(NodeBuild&) { return std::make_unique<WhereKernel>(); }

// ---------------------------------------------------------------- Clip

class ClipKernel final : public OpKernel {
 public:
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "Clip");
    if (!(is_float_type(t) || is_int_type(t))) unsupported_type("Clip", t);
    for (size_t i = 1; i < in.size(); ++i) {
      if (in[i] && *in[i] != t) fail("Clip: min and max must have the input's type");
    }
    return {t};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    out[0] = new_tensor(x.dtype(), x.shape());
    dispatch_numeric(x.dtype(), "Clip", [&](auto tag) {
      using T = decltype(tag);
      T lo = std::numeric_limits<T>::lowest();
      T hi = std::numeric_limits<T>::max();
      if (in.size() > 1 && in[1] != nullptr) {
        if (in[1]->numel() != 1) fail("Clip: min must be a scalar");
        lo = in[1]->data<T>()[0];
      }
      if (in.size() > 2 && in[2] != nullptr) {
        if (in[2]->numel() != 1) fail("Clip: max must be a scalar");
        hi = in[2]->data<T>()[0];
      }
      map_values(ctx.pool, x.data<T>(), out[0].mutable_data<T>(), x.numel(),
                 [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });
    });
  }
};

std::unique_ptr<OpKernel> make_clip(NodeBuild&) { return std::make_unique<ClipKernel>(); }

// ---------------------------------------------------------------- Cast

// Converts every element of `x` into `out` (same shape, other type).
void cast_values(ThreadPool& pool, const Tensor& x, Tensor& out) {
  auto read = [&](auto store) {
    switch (x.dtype()) {
      case DType::F16: {
        const uint16_t* p = x.data<uint16_t>();
        for (int64_t i = 0; i < x.numel(); ++i) store(i, static_cast<double>(half_to_float(p[i])));
        return;
      }
      case DType::BF16: {
        const uint16_t* p = x.data<uint16_t>();
        for (int64_t i = 0; i < x.numel(); ++i) store(i, static_cast<double>(bf16_to_float(p[i])));
        return;
      }
      default:
        dispatch_all(x.dtype(), "Cast", [&](auto tag) {
          using S = decltype(tag);
          const S* p = x.data<S>();
          for (int64_t i = 0; i < x.numel(); ++i) store(i, p[i]);
        });
    }
  };
  (void)pool;
  switch (out.dtype()) {
    case DType::F16: {
      uint16_t* o = out.mutable_data<uint16_t>();
      read([&](int64_t i, auto v) { o[i] = float_to_half(static_cast<float>(v)); });
      return;
    }
    case DType::BF16: {
      uint16_t* o = out.mutable_data<uint16_t>();
      read([&](int64_t i, auto v) {
        const float f = static_cast<float>(v);
        uint32_t bits = 0;
        std::memcpy(&bits, &f, 4);
        if (std::isnan(f)) {
          o[i] = 0x7fc0;
        } else {
          bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
          o[i] = static_cast<uint16_t>(bits >> 16);
        }
      });
      return;
    }
    default:
      dispatch_all(out.dtype(), "Cast", [&](auto tag) {
        using D = decltype(tag);
        D* o = out.mutable_data<D>();
        read([&](int64_t i, auto v) {
          using V = decltype(v);
          if constexpr (std::is_same_v<D, bool>) {
            o[i] = v != V{0};
          } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<V>) {
            // Out-of-range and NaN float-to-int casts are undefined in C++; saturate instead.
            if (std::isnan(v)) {
              o[i] = 0;
            } else if (v <= static_cast<V>(std::numeric_limits<D>::lowest())) {
              o[i] = std::numeric_limits<D>::lowest();
            } else if (v >= static_cast<V>(std::numeric_limits<D>::max())) {
              o[i] = std::numeric_limits<D>::max();
            } else {
              o[i] = static_cast<D>(v);
            }
          } else {
            o[i] = static_cast<D>(v);
          }
        });
      });
  }
}

class CastKernel final : public OpKernel {
 public:
  explicit CastKernel(std::optional<DType> to) : to_(to) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    input_type(in, 0, "Cast");
    return {to_ ? *to_ : input_type(in, 1, "CastLike")};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const DType to = to_ ? *to_ : in[1]->dtype();
    if (x.dtype() == to) {
      out[0] = x;
      return;
    }
    out[0] = new_tensor(to, x.shape());
    cast_values(ctx.pool, x, out[0]);
  }

 private:
  std::optional<DType> to_;
};

std::unique_ptr<OpKernel> make_cast(NodeBuild& b) {
  const int64_t to = b.attrs().require_int("to");
  std::optional<DType> t = dtype_from_onnx(static_cast<int>(to));
  if (!t) throw Unsupported(cat("Cast to ONNX type ", to, " is not supported"));
  return std::make_unique<CastKernel>(t);
}
std::unique_ptr<OpKernel> make_cast_like(NodeBuild&) {
  return std::make_unique<CastKernel>(std::nullopt);
}

constexpr OpSpec kOps[] = {
    {"Abs", 13, make_unary<Unary::Abs, TypeSet::Numeric>, 1, 1},
    {"Neg", 13, make_unary<Unary::Neg, TypeSet::Numeric>, 1, 1},
    {"Sign", 13, make_unary<Unary::Sign, TypeSet::Numeric>, 1, 1},
    {"Relu", 13, make_unary<Unary::Relu, TypeSet::Numeric>, 1, 1},
    {"Not", 1, make_unary<Unary::Not, TypeSet::Bool>, 1, 1},
    {"Sqrt", 13, make_unary<Unary::Sqrt, TypeSet::Float>, 1, 1},
    {"Exp", 13, make_unary<Unary::Exp, TypeSet::Float>, 1, 1},
    {"Log", 13, make_unary<Unary::Log, TypeSet::Float>, 1, 1},
    {"Erf", 13, make_unary<Unary::Erf, TypeSet::Float>, 1, 1},
    {"Tanh", 13, make_unary<Unary::Tanh, TypeSet::Float>, 1, 1},
    {"Sigmoid", 13, make_unary<Unary::Sigmoid, TypeSet::Float>, 1, 1},
    {"Reciprocal", 13, make_unary<Unary::Reciprocal, TypeSet::Float>, 1, 1},
    {"Floor", 13, make_unary<Unary::Floor, TypeSet::Float>, 1, 1},
    {"Ceil", 13, make_unary<Unary::Ceil, TypeSet::Float>, 1, 1},
    {"Round", 11, make_unary<Unary::Round, TypeSet::Float>, 1, 1},
    {"Sin", 7, make_unary<Unary::Sin, TypeSet::Float>, 1, 1},
    {"Cos", 7, make_unary<Unary::Cos, TypeSet::Float>, 1, 1},
    {"Tan", 7, make_unary<Unary::Tan, TypeSet::Float>, 1, 1},
    {"Asin", 7, make_unary<Unary::Asin, TypeSet::Float>, 1, 1},
    {"Acos", 7, make_unary<Unary::Acos, TypeSet::Float>, 1, 1},
    {"Atan", 7, make_unary<Unary::Atan, TypeSet::Float>, 1, 1},
    {"Sinh", 9, make_unary<Unary::Sinh, TypeSet::Float>, 1, 1},
    {"Cosh", 9, make_unary<Unary::Cosh, TypeSet::Float>, 1, 1},
    {"Asinh", 9, make_unary<Unary::Asinh, TypeSet::Float>, 1, 1},
    {"Acosh", 9, make_unary<Unary::Acosh, TypeSet::Float>, 1, 1},
    {"Atanh", 9, make_unary<Unary::Atanh, TypeSet::Float>, 1, 1},
    {"Softplus", 1, make_unary<Unary::Softplus, TypeSet::Float>, 1, 1},
    {"Softsign", 1, make_unary<Unary::Softsign, TypeSet::Float>, 1, 1},
    {"Elu", 6, make_unary<Unary::Elu, TypeSet::Float>, 1, 1},
    {"Selu", 6, make_unary<Unary::Selu, TypeSet::Float>, 1, 1},
    {"LeakyRelu", 6, make_unary<Unary::LeakyRelu, TypeSet::Float>, 1, 1},
    {"HardSigmoid", 6, make_unary<Unary::HardSigmoid, TypeSet::Float>, 1, 1},
    {"HardSwish", 14, make_unary<Unary::HardSwish, TypeSet::Float>, 1, 1},
    {"ThresholdedRelu", 10, make_unary<Unary::ThresholdedRelu, TypeSet::Float>, 1, 1},
    {"Celu", 12, make_unary<Unary::Celu, TypeSet::Float>, 1, 1},
    {"IsNaN", 13, make_isnan, 1, 1},
    {"IsInf", 10, make_isinf, 1, 1},
    {"Add", 13, make_binary<Binary::Add>, 2, 2},
    {"Sub", 13, make_binary<Binary::Sub>, 2, 2},
    {"Mul", 13, make_binary<Binary::Mul>, 2, 2},
    {"Div", 13, make_binary<Binary::Div>, 2, 2},
    {"Mod", 13, make_binary<Binary::Mod>, 2, 2},
    {"PRelu", 9, make_binary<Binary::PRelu>, 2, 2},
    {"Equal", 13, make_binary<Binary::Equal>, 2, 2},
    {"Less", 13, make_binary<Binary::Less>, 2, 2},
    {"LessOrEqual", 12, make_binary<Binary::LessEq>, 2, 2},
    {"Greater", 13, make_binary<Binary::Greater>, 2, 2},
    {"GreaterOrEqual", 12, make_binary<Binary::GreaterEq>, 2, 2},
    {"And", 7, make_binary<Binary::And>, 2, 2},
    {"Or", 7, make_binary<Binary::Or>, 2, 2},
    {"Xor", 7, make_binary<Binary::Xor>, 2, 2},
    {"Max", 13, make_max, 1, -1},
    {"Min", 13, make_min, 1, -1},
    {"Sum", 13, make_sum, 1, -1},
    {"Mean", 13, make_mean, 1, -1},
    {"Pow", 13, make_pow, 2, 2},
    {"Where", 9, make_where, 3, 3},
    {"Clip", 13, make_clip, 1, 3},
    {"Cast", 13, make_cast, 1, 1},
    {"CastLike", 15, make_cast_like, 2, 2},
};

}  // namespace

std::span<const OpSpec> elementwise_ops() { return kOps; }

}  // namespace cosy::onnx
