// Operators that move or make data without arithmetic on it: shapes, views, gathers,
// padding and constants. They work on any element type (bytes of the element's size).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "onnx/broadcast.h"
#include "onnx/dispatch.h"
#include "onnx/op_registry.h"
#include "onnx/tensor_proto.h"

namespace cosy::onnx {
namespace {

// Same bytes, new shape; shares ownership with `x`.
Tensor view_as(const Tensor& x, Shape shape) {
  if (shape_numel(shape) != x.numel()) {
    fail("cannot reshape ", shape_str(x.shape()), " to ", shape_str(shape));
  }
  Tensor copy = x;  // keeps the owner alive through the aliasing constructor below
  auto owner = std::make_shared<Tensor>(copy);
  Shape strides = contiguous_strides(shape);
  return Tensor(x.dtype(), std::move(shape), std::move(strides), const_cast<std::byte*>(x.raw()),
                std::shared_ptr<const void>(owner, owner.get()), false);
}

// A kernel whose output type is input `i`'s type.
class SameTypeKernel : public OpKernel {
 public:
  std::vector<DType> infer_types(InputTypes in) const override { return {input_type(in, 0, "op")}; }
};

std::vector<int64_t> required_ints(const Tensor* t, const char* what) {
  if (t == nullptr) fail(what, " is required");
  return int_values(*t);
}

// ---------------------------------------------------------------- Identity, Dropout

class IdentityKernel final : public SameTypeKernel {
 public:
  explicit IdentityKernel(bool dropout) : dropout_(dropout) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    return {input_type(in, 0, "Identity"), DType::Bool};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    if (dropout_ && in.size() > 2 && in[2] != nullptr && in[2]->numel() == 1 &&
        in[2]->data<bool>()[0]) {
      throw Unsupported("Dropout in training mode (random masks) is not supported");
    }
    out[0] = *in[0];
    if (out.size() > 1) {
      out[1] = new_tensor(DType::Bool, in[0]->shape());
      std::memset(out[1].mutable_raw(), 1, out[1].nbytes());
    }
  }

 private:
  bool dropout_;
};

std::unique_ptr<OpKernel> make_identity(NodeBuild&) {
  return std::make_unique<IdentityKernel>(false);
}
std::unique_ptr<OpKernel> make_dropout(NodeBuild& b) {
  b.attrs().ignore("seed");
  return std::make_unique<IdentityKernel>(true);
}

// ---------------------------------------------------------------- Shape, Size

class ShapeKernel final : public OpKernel {
 public:
  ShapeKernel(bool size, int64_t start, std::optional<int64_t> end)
      : size_(size), start_(start), end_(end) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    input_type(in, 0, "Shape");
    return {DType::I64};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Shape& s = in[0]->shape();
    if (size_) {
      out[0] = new_tensor(DType::I64, {});
      out[0].mutable_data<int64_t>()[0] = in[0]->numel();
      return;
    }
    const int64_t r = static_cast<int64_t>(s.size());
    auto clamp = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
    const int64_t b = clamp(start_);
    const int64_t e = end_ ? clamp(*end_) : r;
    const int64_t n = std::max<int64_t>(0, e - b);
    out[0] = new_tensor(DType::I64, {n});
    for (int64_t i = 0; i < n; ++i) out[0].mutable_data<int64_t>()[i] = s[b + i];
  }

 private:
  bool size_;
  int64_t start_;
  std::optional<int64_t> end_;
};

std::unique_ptr<OpKernel> make_shape(NodeBuild& b) {
  std::optional<int64_t> end;
  if (b.attrs().has("end")) end = b.attrs().get_int("end", 0);
  return std::make_unique<ShapeKernel>(false, b.attrs().get_int("start", 0), end);
}
std::unique_ptr<OpKernel> make_size(NodeBuild&) {
  return std::make_unique<ShapeKernel>(true, 0, std::nullopt);
}

// ---------------------------------------------------------------- Reshape, Flatten, Squeeze,
// Unsqueeze

class ReshapeKernel final : public SameTypeKernel {
 public:
  explicit ReshapeKernel(bool allowzero) : allowzero_(allowzero) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    std::vector<int64_t> spec = int_values(*in[1]);
    Shape shape(spec.size());
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
      int64_t d = spec[i];
      if (d == 0 && !allowzero_) {
        if (i >= x.rank()) fail("Reshape: 0 at position ", i, " but the input has rank ", x.rank());
        d = x.dim(i);
      }
      if (d == -1) {
        if (infer >= 0) fail("Reshape: more than one -1 in ", shape_str(spec));
        infer = static_cast<int>(i);
        continue;
      }
      if (d < 0) fail("Reshape: bad dimension ", d);
      shape[i] = d;
      known *= d;
    }
    if (infer >= 0) {
      if (known == 0 || x.numel() % known != 0)
        fail("Reshape: cannot infer -1 in ", shape_str(spec), " for ", shape_str(x.shape()));
      shape[infer] = x.numel() / known;
    }
    out[0] = view_as(x, shape);
  }

 private:
  bool allowzero_;
};

std::unique_ptr<OpKernel> make_reshape(NodeBuild& b) {
  return std::make_unique<ReshapeKernel>(b.attrs().get_int("allowzero", 0) != 0);
}

class FlattenKernel final : public SameTypeKernel {
 public:
  explicit FlattenKernel(int64_t axis) : axis_(axis) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = axis_ < 0 ? axis_ + r : axis_;
    if (a < 0 || a > r) fail("Flatten: axis ", axis_, " is out of range for rank ", r);
    int64_t outer = 1;
    for (int64_t i = 0; i < a; ++i) outer *= x.dim(i);
    out[0] = view_as(x, {outer, outer == 0 ? 0 : x.numel() / std::max<int64_t>(outer, 1)});
    if (outer == 0) {
      int64_t inner = 1;
      for (int64_t i = a; i < r; ++i) inner *= x.dim(i);
      out[0] = view_as(x, {0, inner});
    }
  }

 private:
  int64_t axis_;
};

std::unique_ptr<OpKernel> make_flatten(NodeBuild& b) {
  return std::make_unique<FlattenKernel>(b.attrs().get_int("axis", 1));
}

class SqueezeKernel final : public SameTypeKernel {
 public:
  explicit SqueezeKernel(bool unsqueeze) : unsqueeze_(unsqueeze) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const Shape& s = x.shape();
    if (unsqueeze_) {
      std::vector<int64_t> axes = required_ints(in.size() > 1 ? in[1] : nullptr, "Unsqueeze: axes");
      const int64_t r = static_cast<int64_t>(s.size() + axes.size());
      std::vector<bool> inserted(static_cast<size_t>(r), false);
      for (int64_t a : axes) {
        const int64_t n = normalize_axis(a, r, "Unsqueeze: axis");
        if (inserted[n]) fail("Unsqueeze: axis ", a, " appears twice");
        inserted[n] = true;
      }
      Shape shape;
      size_t k = 0;
      for (int64_t i = 0; i < r; ++i) shape.push_back(inserted[i] ? 1 : s[k++]);
      out[0] = view_as(x, shape);
      return;
    }
    const int64_t r = static_cast<int64_t>(s.size());
    std::vector<bool> drop(s.size(), false);
    if (in.size() > 1 && in[1] != nullptr) {
      for (int64_t a : int_values(*in[1])) {
        const int64_t n = normalize_axis(a, r, "Squeeze: axis");
        if (s[n] != 1) fail("Squeeze: dimension ", a, " of ", shape_str(s), " is not 1");
        drop[n] = true;
      }
    } else {
      for (int64_t i = 0; i < r; ++i) drop[i] = s[i] == 1;
    }
    Shape shape;
    for (int64_t i = 0; i < r; ++i) {
      if (!drop[i]) shape.push_back(s[i]);
    }
    out[0] = view_as(x, shape);
  }

 private:
  bool unsqueeze_;
};

std::unique_ptr<OpKernel> make_squeeze(NodeBuild&) {
  return std::make_unique<SqueezeKernel>(false);
}
std::unique_ptr<OpKernel> make_unsqueeze(NodeBuild&) {
  return std::make_unique<SqueezeKernel>(true);
}

// ---------------------------------------------------------------- Transpose

void transpose_bytes(ThreadPool& pool, const Tensor& x, const std::vector<int64_t>& perm,
                     Tensor& out) {
  const int64_t r = static_cast<int64_t>(x.rank());
  const size_t es = dtype_size(x.dtype());
  Shape in_strides = contiguous_strides(x.shape());
  // Input stride of each output dimension.
  Shape strides(r);
  for (int64_t i = 0; i < r; ++i) strides[i] = in_strides[perm[i]];
  const std::byte* src = x.raw();
  std::byte* dst = out.mutable_raw();
  std::array<Shape, 1> st{strides};
  const bool last_kept = r > 0 && perm[r - 1] == r - 1;
  for_each_row<1>(pool, out.shape(), st,
                  [&](int64_t o, const auto& offs, const auto& steps, int64_t n) {
                    if (last_kept) {
                      std::memcpy(dst + o * es, src + offs[0] * es, static_cast<size_t>(n) * es);
                      return;
                    }
                    for (int64_t i = 0; i < n; ++i)
                      std::memcpy(dst + (o + i) * es, src + (offs[0] + i * steps[0]) * es, es);
                  });
}

class TransposeKernel final : public SameTypeKernel {
 public:
  explicit TransposeKernel(std::optional<std::vector<int64_t>> perm) : perm_(std::move(perm)) {}
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    std::vector<int64_t> perm(r);
    if (perm_) {
      if (static_cast<int64_t>(perm_->size()) != r)
        fail("Transpose: perm has ", perm_->size(), " entries for rank ", r);
      std::vector<bool> seen(r, false);
      for (int64_t i = 0; i < r; ++i) {
        const int64_t p = normalize_axis((*perm_)[i], r, "Transpose: perm entry");
        if (seen[p]) fail("Transpose: perm repeats ", p);
        seen[p] = true;
        perm[i] = p;
      }
    } else {
      for (int64_t i = 0; i < r; ++i) perm[i] = r - 1 - i;
    }
    Shape shape(r);
    for (int64_t i = 0; i < r; ++i) shape[i] = x.dim(perm[i]);
    out[0] = new_tensor(x.dtype(), shape);
    transpose_bytes(ctx.pool, x, perm, out[0]);
  }

 private:
  std::optional<std::vector<int64_t>> perm_;
};

std::unique_ptr<OpKernel> make_transpose(NodeBuild& b) {
  return std::make_unique<TransposeKernel>(b.attrs().maybe_ints("perm"));
}

// ---------------------------------------------------------------- Concat, Split

class ConcatKernel final : public OpKernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "Concat");
    for (size_t i = 1; i < in.size(); ++i) {
      if (input_type(in, i, "Concat") != t) fail("Concat: inputs have different types");
    }
    return {t};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& first = *in[0];
    const int64_t r = static_cast<int64_t>(first.rank());
    const int64_t a = normalize_axis(axis_, r, "Concat: axis");
    Shape shape = first.shape();
    shape[a] = 0;
    for (const Tensor* t : in) {
      if (t->rank() != first.rank()) fail("Concat: inputs have different ranks");
      for (int64_t d = 0; d < r; ++d) {
        if (d != a && t->dim(d) != first.dim(d)) {
          fail("Concat: shapes ", shape_str(first.shape()), " and ", shape_str(t->shape()),
               " differ outside axis ", a);
        }
      }
      shape[a] += t->dim(a);
    }
    out[0] = new_tensor(first.dtype(), shape);
    const size_t es = dtype_size(first.dtype());
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= shape[d];
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= shape[d];
    std::byte* dst = out[0].mutable_raw();
    const int64_t out_row = shape[a] * inner;
    int64_t col = 0;
    for (const Tensor* t : in) {
      const int64_t row = t->dim(a) * inner;
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(dst + (o * out_row + col) * es, t->raw() + o * row * es,
                    static_cast<size_t>(row) * es);
      }
      col += row;
    }
  }

 private:
  int64_t axis_;
};

std::unique_ptr<OpKernel> make_concat(NodeBuild& b) {
  return std::make_unique<ConcatKernel>(b.attrs().require_int("axis"));
}

class SplitKernel final : public OpKernel {
 public:
  SplitKernel(int64_t axis, size_t outputs, std::optional<std::vector<int64_t>> split_attr)
      : axis_(axis), outputs_(outputs), split_attr_(std::move(split_attr)) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    return std::vector<DType>(outputs_, input_type(in, 0, "Split"));
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = normalize_axis(axis_, r, "Split: axis");
    const int64_t dim = x.dim(a);
    std::vector<int64_t> sizes;
    if (in.size() > 1 && in[1] != nullptr) {
      sizes = int_values(*in[1]);
    } else if (split_attr_) {
      sizes = *split_attr_;
    } else {
      const int64_t n = static_cast<int64_t>(outputs_);
      const int64_t chunk = (dim + n - 1) / n;  // the last part may be smaller (opset 18)
      for (int64_t i = 0; i < n; ++i)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    }
    if (sizes.size() != outputs_)
      fail("Split: ", sizes.size(), " sizes for ", outputs_, " outputs");
    int64_t total = 0;
    for (int64_t s : sizes) {
      if (s < 0) fail("Split: negative size ", s);
      total += s;
    }
    if (total != dim) fail("Split: sizes sum to ", total, ", the axis has ", dim);
    const size_t es = dtype_size(x.dtype());
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= x.dim(d);
    int64_t start = 0;
    for (size_t k = 0; k < outputs_; ++k) {
      Shape shape = x.shape();
      shape[a] = sizes[k];
      out[k] = new_tensor(x.dtype(), shape);
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(out[k].mutable_raw() + o * sizes[k] * inner * es,
                    x.raw() + (o * dim + start) * inner * es,
                    static_cast<size_t>(sizes[k] * inner) * es);
      }
      start += sizes[k];
    }
  }

 private:
  int64_t axis_;
  size_t outputs_;
  std::optional<std::vector<int64_t>> split_attr_;
};

std::unique_ptr<OpKernel> make_split(NodeBuild& b) {
  if (b.attrs().has("num_outputs")) {
    const int64_t n = b.attrs().get_int("num_outputs", 0);
    if (n != static_cast<int64_t>(b.num_outputs()))
      fail("num_outputs ", n, " differs from the node's ", b.num_outputs(), " outputs");
  }
  return std::make_unique<SplitKernel>(b.attrs().get_int("axis", 0), b.num_outputs(),
                                       b.attrs().maybe_ints("split"));
}

// ---------------------------------------------------------------- Slice

class SliceKernel final : public SameTypeKernel {
 public:
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    std::vector<int64_t> starts = int_values(*in[1]);
    std::vector<int64_t> ends = int_values(*in[2]);
    if (starts.size() != ends.size()) fail("Slice: starts and ends differ in length");
    std::vector<int64_t> axes(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
    if (in.size() > 3 && in[3] != nullptr) axes = int_values(*in[3]);
    std::vector<int64_t> steps(starts.size(), 1);
    if (in.size() > 4 && in[4] != nullptr) steps = int_values(*in[4]);
    if (axes.size() != starts.size() || steps.size() != starts.size())
      fail("Slice: starts, ends, axes and steps differ in length");
    Shape begin(r, 0);
    Shape step(r, 1);
    Shape shape = x.shape();
    std::vector<bool> seen(r, false);
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t a = normalize_axis(axes[i], r, "Slice: axis");
      if (seen[a]) fail("Slice: axis ", axes[i], " appears twice");
      seen[a] = true;
      const int64_t dim = x.dim(a);
      const int64_t st = steps[i];
      if (st == 0) fail("Slice: step 0");
      int64_t s = starts[i];
      int64_t e = ends[i];
      if (s < 0) s += dim;
      if (e < 0 && e > std::numeric_limits<int64_t>::min() + dim)
        e += dim;
      else if (e < 0)
        e = -1;
      int64_t n = 0;
      if (st > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        n = e > s ? (e - s + st - 1) / st : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        n = s > e ? (s - e + (-st) - 1) / (-st) : 0;
      }
      begin[a] = s;
      step[a] = st;
      shape[a] = n;
    }
    out[0] = new_tensor(x.dtype(), shape);
    if (out[0].numel() == 0) return;
    Shape in_strides = contiguous_strides(x.shape());
    int64_t base = 0;
    Shape strides(r);
    for (int64_t d = 0; d < r; ++d) {
      base += begin[d] * in_strides[d];
      strides[d] = in_strides[d] * step[d];
    }
    const size_t es = dtype_size(x.dtype());
    const std::byte* src = x.raw() + base * static_cast<int64_t>(es);
    std::byte* dst = out[0].mutable_raw();
    std::array<Shape, 1> st{strides};
    for_each_row<1>(ctx.pool, shape, st,
                    [&](int64_t o, const auto& offs, const auto& steps_, int64_t n) {
                      if (steps_[0] == 1) {
                        std::memcpy(dst + o * es, src + offs[0] * static_cast<int64_t>(es),
                                    static_cast<size_t>(n) * es);
                        return;
                      }
                      for (int64_t i = 0; i < n; ++i) {
                        std::memcpy(dst + (o + i) * es,
                                    src + (offs[0] + i * steps_[0]) * static_cast<int64_t>(es), es);
                      }
                    });
  }
};

std::unique_ptr<OpKernel> make_slice(NodeBuild&) { return std::make_unique<SliceKernel>(); }

// ---------------------------------------------------------------- Gather, GatherElements

class GatherKernel final : public SameTypeKernel {
 public:
  GatherKernel(int64_t axis, bool elements) : axis_(axis), elements_(elements) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const Tensor& idx = *in[1];
    if (idx.dtype() != DType::I64 && idx.dtype() != DType::I32)
      fail("indices must be int64 or int32");
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = normalize_axis(axis_, r, "axis");
    const int64_t dim = x.dim(a);
    std::vector<int64_t> ids = idx.to_int_vector();
    for (int64_t& i : ids) {
      if (i < -dim || i >= dim)
        fail("index ", i, " is out of range for dimension ", a, " of size ", dim);
      if (i < 0) i += dim;
    }
    const size_t es = dtype_size(x.dtype());
    if (elements_) {
      if (idx.rank() != x.rank()) fail("GatherElements: indices rank differs from data rank");
      out[0] = new_tensor(x.dtype(), idx.shape());
      Shape xs = contiguous_strides(x.shape());
      const Shape& is = idx.shape();
      for (int64_t k = 0; k < idx.numel(); ++k) {
        int64_t rem = k;
        int64_t off = 0;
        for (int64_t d = r - 1; d >= 0; --d) {
          const int64_t c = rem % is[d];
          rem /= is[d];
          if (d != a && c >= x.dim(d)) fail("GatherElements: indices shape exceeds data");
          off += (d == a ? ids[k] : c) * xs[d];
        }
        std::memcpy(out[0].mutable_raw() + k * es, x.raw() + off * static_cast<int64_t>(es), es);
      }
      return;
    }
    Shape shape(x.shape().begin(), x.shape().begin() + a);
    shape.insert(shape.end(), idx.shape().begin(), idx.shape().end());
    shape.insert(shape.end(), x.shape().begin() + a + 1, x.shape().end());
    out[0] = new_tensor(x.dtype(), shape);
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= x.dim(d);
    const size_t row = static_cast<size_t>(inner) * es;
    std::byte* dst = out[0].mutable_raw();
    for (int64_t o = 0; o < outer; ++o) {
      for (size_t k = 0; k < ids.size(); ++k) {
        std::memcpy(dst, x.raw() + (o * dim + ids[k]) * static_cast<int64_t>(row), row);
        dst += row;
      }
    }
  }

 private:
  int64_t axis_;
  bool elements_;
};

std::unique_ptr<OpKernel> make_gather(NodeBuild& b) {
  return std::make_unique<GatherKernel>(b.attrs().get_int("axis", 0), false);
}
std::unique_ptr<OpKernel> make_gather_elements(NodeBuild& b) {
  return std::make_unique<GatherKernel>(b.attrs().get_int("axis", 0), true);
}

// ---------------------------------------------------------------- Expand, Tile

void broadcast_copy(ThreadPool& pool, const Tensor& x, Tensor& out) {
  const size_t es = dtype_size(x.dtype());
  std::array<Shape, 1> st{broadcast_strides(x.shape(), out.shape())};
  const std::byte* src = x.raw();
  std::byte* dst = out.mutable_raw();
  for_each_row<1>(pool, out.shape(), st,
                  [&](int64_t o, const auto& offs, const auto& steps, int64_t n) {
                    if (steps[0] == 1) {
                      std::memcpy(dst + o * es, src + offs[0] * static_cast<int64_t>(es),
                                  static_cast<size_t>(n) * es);
                      return;
                    }
                    for (int64_t i = 0; i < n; ++i)
                      std::memcpy(dst + (o + i) * es, src + offs[0] * static_cast<int64_t>(es), es);
                  });
}

class ExpandKernel final : public SameTypeKernel {
 public:
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    std::vector<int64_t> target = int_values(*in[1]);
    for (int64_t d : target) {
      if (d < 0) fail("Expand: negative dimension in ", shape_str(target));
    }
    Shape shape = broadcast_shapes(x.shape(), target);
    out[0] = new_tensor(x.dtype(), shape);
    broadcast_copy(ctx.pool, x, out[0]);
  }
};

std::unique_ptr<OpKernel> make_expand(NodeBuild&) { return std::make_unique<ExpandKernel>(); }

class TileKernel final : public SameTypeKernel {
 public:
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    std::vector<int64_t> reps = int_values(*in[1]);
    const int64_t r = static_cast<int64_t>(x.rank());
    if (static_cast<int64_t>(reps.size()) != r)
      fail("Tile: ", reps.size(), " repeats for rank ", r);
    Shape shape(r);
    for (int64_t d = 0; d < r; ++d) {
      if (reps[d] < 0) fail("Tile: negative repeat");
      shape[d] = x.dim(d) * reps[d];
    }
    out[0] = new_tensor(x.dtype(), shape);
    const size_t es = dtype_size(x.dtype());
    Shape xs = contiguous_strides(x.shape());
    for (int64_t k = 0; k < out[0].numel(); ++k) {
      int64_t rem = k;
      int64_t off = 0;
      for (int64_t d = r - 1; d >= 0; --d) {
        const int64_t c = rem % shape[d];
        rem /= shape[d];
        off += (c % x.dim(d)) * xs[d];
      }
      std::memcpy(out[0].mutable_raw() + k * es, x.raw() + off * static_cast<int64_t>(es), es);
    }
  }
};

std::unique_ptr<OpKernel> make_tile(NodeBuild&) { return std::make_unique<TileKernel>(); }

// ---------------------------------------------------------------- Pad

class PadKernel final : public SameTypeKernel {
 public:
  explicit PadKernel(std::string mode) : mode_(std::move(mode)) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    std::vector<int64_t> pads = int_values(*in[1]);
    std::vector<int64_t> axes(r);
    std::iota(axes.begin(), axes.end(), 0);
    if (in.size() > 3 && in[3] != nullptr) {
      axes = int_values(*in[3]);
      for (int64_t& a : axes) a = normalize_axis(a, r, "Pad: axis");
    }
    const size_t na = axes.size();
    if (pads.size() != 2 * na) fail("Pad: ", pads.size(), " pads for ", na, " axes");
    Shape before(r, 0);
    Shape after(r, 0);
    for (size_t i = 0; i < na; ++i) {
      before[axes[i]] = pads[i];
      after[axes[i]] = pads[i + na];
    }
    Shape shape(r);
    for (int64_t d = 0; d < r; ++d) {
      shape[d] = x.dim(d) + before[d] + after[d];
      if (shape[d] < 0) fail("Pad: negative output dimension");
      if (mode_ != "constant" && x.dim(d) == 0 && shape[d] > 0)
        fail("Pad: ", mode_, " padding of an empty axis");
      if (mode_ == "reflect" && (before[d] >= x.dim(d) || after[d] >= x.dim(d)) &&
          (before[d] > 0 || after[d] > 0)) {
        fail("Pad: reflect padding ", before[d], "/", after[d],
             " needs a dimension larger than that, got ", x.dim(d));
      }
    }
    out[0] = new_tensor(x.dtype(), shape);
    const size_t es = dtype_size(x.dtype());
    std::vector<std::byte> fill(es, std::byte{0});
    if (in.size() > 2 && in[2] != nullptr && in[2]->numel() > 0) {
      if (in[2]->dtype() != x.dtype()) fail("Pad: constant_value has another type");
      std::memcpy(fill.data(), in[2]->raw(), es);
    }
    Shape xs = contiguous_strides(x.shape());
    for (int64_t k = 0; k < out[0].numel(); ++k) {
      int64_t rem = k;
      int64_t off = 0;
      bool outside = false;
      for (int64_t d = r - 1; d >= 0; --d) {
        int64_t c = rem % shape[d] - before[d];
        rem /= shape[d];
        const int64_t n = x.dim(d);
        if (c < 0 || c >= n) {
          if (mode_ == "constant") {
            outside = true;
            break;
          }
          if (mode_ == "edge") {
            c = c < 0 ? 0 : n - 1;
          } else {  // reflect
            while (c < 0 || c >= n) c = c < 0 ? -c : 2 * (n - 1) - c;
          }
        }
        off += c * xs[d];
      }
      std::memcpy(
          out[0].mutable_raw() + k * es,
          outside ? fill.data()
                  : reinterpret_cast<const std::byte*>(x.raw()) + off * static_cast<int64_t>(es),
          es);
    }
  }

 private:
  std::string mode_;
};

std::unique_ptr<OpKernel> make_pad(NodeBuild& b) {
  std::string mode = b.attrs().get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    throw Unsupported(cat("Pad mode '", mode, "' is not supported"));
  return std::make_unique<PadKernel>(mode);
}

// ---------------------------------------------------------------- Constant, ConstantOfShape, Range

class ConstantKernel final : public OpKernel {
 public:
  explicit ConstantKernel(Tensor value) : value_(std::move(value)) {}
  std::vector<DType> infer_types(InputTypes) const override { return {value_.dtype()}; }
  void run(RunContext&, std::span<const Tensor* const>, std::span<Tensor> out) const override {
    out[0] = value_;
  }

 private:
  Tensor value_;
};

std::unique_ptr<OpKernel> make_constant(NodeBuild& b) {
  Attributes& at = b.attrs();
  if (const Tensor* t = at.maybe_tensor("value")) return std::make_unique<ConstantKernel>(*t);
  if (at.has("value_float")) {
    Tensor t = new_tensor(DType::F32, {});
    t.mutable_data<float>()[0] = at.get_float("value_float", 0);
    return std::make_unique<ConstantKernel>(t);
  }
  if (at.has("value_int")) {
    Tensor t = new_tensor(DType::I64, {});
    t.mutable_data<int64_t>()[0] = at.get_int("value_int", 0);
    return std::make_unique<ConstantKernel>(t);
  }
  if (at.has("value_floats")) {
    std::vector<float> v = at.get_floats("value_floats");
    Tensor t = new_tensor(DType::F32, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.mutable_data<float>());
    return std::make_unique<ConstantKernel>(t);
  }
  if (at.has("value_ints")) {
    std::vector<int64_t> v = at.get_ints("value_ints");
    Tensor t = new_tensor(DType::I64, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.mutable_data<int64_t>());
    return std::make_unique<ConstantKernel>(t);
  }
  throw Unsupported(
      "Constant without a value, value_float(s) or value_int(s) attribute is not supported");
}

class ConstantOfShapeKernel final : public OpKernel {
 public:
  explicit ConstantOfShapeKernel(Tensor value) : value_(std::move(value)) {}
  std::vector<DType> infer_types(InputTypes) const override { return {value_.dtype()}; }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    std::vector<int64_t> shape = int_values(*in[0]);
    for (int64_t d : shape) {
      if (d < 0) fail("ConstantOfShape: negative dimension in ", shape_str(shape));
    }
    out[0] = new_tensor(value_.dtype(), shape);
    const size_t es = dtype_size(value_.dtype());
    for (int64_t i = 0; i < out[0].numel(); ++i)
      std::memcpy(out[0].mutable_raw() + i * es, value_.raw(), es);
  }

 private:
  Tensor value_;
};

std::unique_ptr<OpKernel> make_constant_of_shape(NodeBuild& b) {
  const Tensor* v = b.attrs().maybe_tensor("value");
  if (v == nullptr) return std::make_unique<ConstantOfShapeKernel>(new_tensor(DType::F32, {1}));
  if (v->numel() != 1) fail("ConstantOfShape: value must hold one element");
  return std::make_unique<ConstantOfShapeKernel>(v->contiguous());
}

class RangeKernel final : public SameTypeKernel {
 public:
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "Range");
    if (!(t == DType::F32 || t == DType::F64 || t == DType::I16 || t == DType::I32 ||
          t == DType::I64)) {
      unsupported_type("Range", t);
    }
    return {t};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    for (int i = 0; i < 3; ++i) {
      if (in[i]->numel() != 1) fail("Range: start, limit and delta must be scalars");
    }
    dispatch_numeric(in[0]->dtype(), "Range", [&](auto tag) {
      using T = decltype(tag);
      const T start = in[0]->data<T>()[0];
      const T limit = in[1]->data<T>()[0];
      const T delta = in[2]->data<T>()[0];
      if (delta == 0) fail("Range: delta is 0");
      const double n = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) /
                                 static_cast<double>(delta));
      if (n > 1e9) fail("Range: ", n, " elements is too many");
      const int64_t count = std::max<int64_t>(0, static_cast<int64_t>(n));
      out[0] = new_tensor(in[0]->dtype(), {count});
      T* p = out[0].mutable_data<T>();
      for (int64_t i = 0; i < count; ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    });
  }
};

std::unique_ptr<OpKernel> make_range(NodeBuild&) { return std::make_unique<RangeKernel>(); }

// ---------------------------------------------------------------- CumSum

class CumSumKernel final : public SameTypeKernel {
 public:
  CumSumKernel(bool exclusive, bool reverse) : exclusive_(exclusive), reverse_(reverse) {}
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    if (in[1]->numel() != 1) fail("CumSum: axis must be a scalar");
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = normalize_axis(in[1]->to_int_vector()[0], r, "CumSum: axis");
    out[0] = new_tensor(x.dtype(), x.shape());
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= x.dim(d);
    const int64_t n = x.dim(a);
    dispatch_numeric(x.dtype(), "CumSum", [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          T acc{0};
          for (int64_t s = 0; s < n; ++s) {
            const int64_t k = reverse_ ? n - 1 - s : s;
            const int64_t at = (o * n + k) * inner + i;
            if (exclusive_) {
              py[at] = acc;
              acc = static_cast<T>(acc + px[at]);
            } else {
              acc = static_cast<T>(acc + px[at]);
              py[at] = acc;
            }
          }
        }
      }
    });
  }

 private:
  bool exclusive_, reverse_;
};

std::unique_ptr<OpKernel> make_cumsum(NodeBuild& b) {
  return std::make_unique<CumSumKernel>(b.attrs().get_int("exclusive", 0) != 0,
                                        b.attrs().get_int("reverse", 0) != 0);
}

constexpr OpSpec kOps[] = {
    {"Identity", 13, make_identity, 1, 1},
    {"Dropout", 13, make_dropout, 1, 3},
    {"Shape", 13, make_shape, 1, 1},
    {"Size", 13, make_size, 1, 1},
    {"Reshape", 13, make_reshape, 2, 2},
    {"Flatten", 13, make_flatten, 1, 1},
    {"Squeeze", 13, make_squeeze, 1, 2},
    {"Unsqueeze", 13, make_unsqueeze, 2, 2},
    {"Transpose", 13, make_transpose, 1, 1},
    {"Concat", 13, make_concat, 1, -1},
    {"Split", 13, make_split, 1, 2},
    {"Slice", 13, make_slice, 3, 5},
    {"Gather", 13, make_gather, 2, 2},
    {"GatherElements", 13, make_gather_elements, 2, 2},
    {"Expand", 13, make_expand, 2, 2},
    {"Tile", 13, make_tile, 2, 2},
    {"Pad", 13, make_pad, 2, 4},
    {"Constant", 13, make_constant, 0, 0},
    {"ConstantOfShape", 9, make_constant_of_shape, 1, 1},
    {"Range", 11, make_range, 3, 3},
    {"CumSum", 11, make_cumsum, 2, 2},
};

}  // namespace

std::span<const OpSpec> shape_ops() { return kOps; }

}  // namespace cosy::onnx
