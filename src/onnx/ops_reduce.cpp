// Reductions over axes (ReduceSum, ReduceMean, ...) and ArgMax/ArgMin.
#include <algorithm>
#include <cmath>
#include <limits>

#include "onnx/dispatch.h"
#include "onnx/op_registry.h"

namespace cosy::onnx {
namespace {

enum class Reduce { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

struct ReducePlan {
  Shape out_shape;   // with keepdims applied
  Shape kept_shape;  // rank preserved, reduced axes 1
  std::vector<bool> reduced;
};

ReducePlan plan_reduce(const Shape& in, std::vector<int64_t> axes, bool keepdims, bool noop_empty) {
  const int64_t r = static_cast<int64_t>(in.size());
  ReducePlan p;
  p.reduced.assign(in.size(), false);
  if (axes.empty()) {
    if (!noop_empty) std::fill(p.reduced.begin(), p.reduced.end(), true);
  } else {
    for (int64_t a : axes) p.reduced[normalize_axis(a, r, "axis")] = true;
  }
  for (int64_t d = 0; d < r; ++d) {
    p.kept_shape.push_back(p.reduced[d] ? 1 : in[d]);
    if (!p.reduced[d] || keepdims) p.out_shape.push_back(p.reduced[d] ? 1 : in[d]);
  }
  return p;
}

// The output position of every input element, in input order.
std::vector<int64_t> output_index(const Shape& in, const ReducePlan& p) {
  const int64_t n = shape_numel(in);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  Shape ks = contiguous_strides(p.kept_shape);
  const int64_t r = static_cast<int64_t>(in.size());
  for (int64_t k = 0; k < n; ++k) {
    int64_t rem = k;
    int64_t off = 0;
    for (int64_t d = r - 1; d >= 0; --d) {
      const int64_t c = rem % in[d];
      rem /= in[d];
      if (!p.reduced[d]) off += c * ks[d];
    }
    idx[k] = off;
  }
  return idx;
}

class ReduceKernel final : public OpKernel {
 public:
  ReduceKernel(const char* name, Reduce op, std::optional<std::vector<int64_t>> axes_attr,
               bool axes_input, bool keepdims, bool noop_empty)
      : name_(name),
        op_(op),
        axes_attr_(std::move(axes_attr)),
        axes_input_(axes_input),
        keepdims_(keepdims),
        noop_empty_(noop_empty) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, name_);
    const bool float_only = op_ == Reduce::Mean || op_ == Reduce::L2 || op_ == Reduce::LogSum ||
                            op_ == Reduce::LogSumExp;
    if (!(is_float_type(t) || (!float_only && (t == DType::I32 || t == DType::I64))))
      unsupported_type(name_, t);
    return {t};
  }

  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    std::vector<int64_t> axes = axes_attr_.value_or(std::vector<int64_t>{});
    if (axes_input_ && in.size() > 1 && in[1] != nullptr) axes = int_values(*in[1]);
    if (axes.empty() && noop_empty_) {
      out[0] = x;
      return;
    }
    ReducePlan plan = plan_reduce(x.shape(), axes, keepdims_, false);
    out[0] = new_tensor(x.dtype(), plan.out_shape);
    const int64_t count_out = out[0].numel();
    const int64_t group = count_out == 0 ? 0 : x.numel() / count_out;
    std::vector<int64_t> idx = output_index(x.shape(), plan);
    dispatch_numeric(x.dtype(), name_, [&](auto tag) {
      using T = decltype(tag);
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
      const T* px = x.data<T>();
      std::vector<Acc> acc(static_cast<size_t>(count_out), init<Acc>());
      for (int64_t k = 0; k < x.numel(); ++k) {
        Acc& a = acc[idx[k]];
        const Acc v = static_cast<Acc>(px[k]);
        switch (op_) {
          case Reduce::Sum:
          case Reduce::Mean:
          case Reduce::LogSum:
            a += v;
            break;
          case Reduce::Max:
            a = std::max(a, v);
            break;
          case Reduce::Min:
            a = std::min(a, v);
            break;
          case Reduce::Prod:
            a *= v;
            break;
          case Reduce::L1:
            a += v < 0 ? -v : v;
            break;
          case Reduce::L2:
          case Reduce::SumSquare:
            a += v * v;
            break;
          case Reduce::LogSumExp:
            break;
        }
      }
      if (op_ == Reduce::LogSumExp) {  // max-shifted for stability
        std::vector<double> mx(static_cast<size_t>(count_out),
                               -std::numeric_limits<double>::infinity());
        for (int64_t k = 0; k < x.numel(); ++k)
          mx[idx[k]] = std::max(mx[idx[k]], static_cast<double>(px[k]));
        std::vector<double> s(static_cast<size_t>(count_out), 0.0);
        for (int64_t k = 0; k < x.numel(); ++k)
          s[idx[k]] += std::exp(static_cast<double>(px[k]) - mx[idx[k]]);
        for (int64_t i = 0; i < count_out; ++i) acc[i] = static_cast<Acc>(mx[i] + std::log(s[i]));
      }
      T* po = out[0].mutable_data<T>();
      for (int64_t i = 0; i < count_out; ++i) {
        double v = static_cast<double>(acc[i]);
        if (op_ == Reduce::Mean) v = group == 0 ? std::nan("") : v / static_cast<double>(group);
        if (op_ == Reduce::L2) v = std::sqrt(v);
        if (op_ == Reduce::LogSum) v = std::log(v);
        po[i] = (op_ == Reduce::Sum || op_ == Reduce::Prod || op_ == Reduce::Max ||
                 op_ == Reduce::Min || op_ == Reduce::L1 || op_ == Reduce::SumSquare)
                    ? static_cast<T>(acc[i])
                    : static_cast<T>(v);
      }
    });
  }

 private:
  template <typename Acc>
  Acc init() const {
    switch (op_) {
      case Reduce::Max:
        return std::numeric_limits<Acc>::lowest();
      case Reduce::Min:
        return std::numeric_limits<Acc>::max();
      case Reduce::Prod:
        return Acc{1};
      default:
        return Acc{0};
    }
  }

  const char* name_;
  Reduce op_;
  std::optional<std::vector<int64_t>> axes_attr_;
  bool axes_input_;
  bool keepdims_;
  bool noop_empty_;
};

template <Reduce op>
std::unique_ptr<OpKernel> make_reduce(NodeBuild& b) {
  static const std::string name = b.op_type();
  // ReduceSum takes axes as an input from opset 13, the others from opset 18.
  const bool axes_input = op == Reduce::Sum || b.opset() >= 18;
  std::optional<std::vector<int64_t>> axes;
  if (!axes_input) axes = b.attrs().maybe_ints("axes");
  if (axes_input && b.num_inputs() > 2) fail(name, " takes at most 2 inputs");
  if (!axes_input && b.num_inputs() > 1) fail(name, " takes 1 input before opset 18");
  const bool noop = axes_input ? b.attrs().get_int("noop_with_empty_axes", 0) != 0 : false;
  return std::make_unique<ReduceKernel>(name.c_str(), op, axes, axes_input,
                                        b.attrs().get_int("keepdims", 1) != 0, noop);
}

class ArgKernel final : public OpKernel {
 public:
  ArgKernel(bool max, int64_t axis, bool keepdims, bool last)
      : max_(max), axis_(axis), keepdims_(keepdims), last_(last) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "ArgMax");
    if (!(is_float_type(t) || is_int_type(t))) unsupported_type(max_ ? "ArgMax" : "ArgMin", t);
    return {DType::I64};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = normalize_axis(axis_, r, "axis");
    ReducePlan plan = plan_reduce(x.shape(), {a}, keepdims_, false);
    out[0] = new_tensor(DType::I64, plan.out_shape);
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= x.dim(d);
    const int64_t n = x.dim(a);
    if (n == 0) fail("cannot take the arg of an empty axis");
    dispatch_numeric(x.dtype(), "ArgMax", [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      int64_t* po = out[0].mutable_data<int64_t>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          int64_t best = 0;
          T bv = px[o * n * inner + i];
          for (int64_t k = 1; k < n; ++k) {
            const T v = px[(o * n + k) * inner + i];
            const bool better = max_ ? (last_ ? v >= bv : v > bv) : (last_ ? v <= bv : v < bv);
            if (better) {
              best = k;
              bv = v;
            }
          }
          po[o * inner + i] = best;
        }
      }
    });
  }

 private:
  bool max_;
  int64_t axis_;
  bool keepdims_, last_;
};

template <bool max>
std::unique_ptr<OpKernel> make_arg(NodeBuild& b) {
  return std::make_unique<ArgKernel>(max, b.attrs().get_int("axis", 0),
                                     b.attrs().get_int("keepdims", 1) != 0,
                                     b.attrs().get_int("select_last_index", 0) != 0);
}

constexpr OpSpec kOps[] = {
    {"ReduceSum", 13, make_reduce<Reduce::Sum>, 1, 2},
    {"ReduceMean", 13, make_reduce<Reduce::Mean>, 1, 2},
    {"ReduceMax", 13, make_reduce<Reduce::Max>, 1, 2},
    {"ReduceMin", 13, make_reduce<Reduce::Min>, 1, 2},
    {"ReduceProd", 13, make_reduce<Reduce::Prod>, 1, 2},
    {"ReduceL1", 13, make_reduce<Reduce::L1>, 1, 2},
    {"ReduceL2", 13, make_reduce<Reduce::L2>, 1, 2},
    {"ReduceSumSquare", 13, make_reduce<Reduce::SumSquare>, 1, 2},
    {"ReduceLogSum", 13, make_reduce<Reduce::LogSum>, 1, 2},
    {"ReduceLogSumExp", 13, make_reduce<Reduce::LogSumExp>, 1, 2},
    {"ArgMax", 13, make_arg<true>, 1, 1},
    {"ArgMin", 13, make_arg<false>, 1, 1},
};

}  // namespace

std::span<const OpSpec> reduce_ops() { return kOps; }

}  // namespace cosy::onnx
