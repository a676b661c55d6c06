// Neural-network operators: Conv (any number of spatial axes, groups, dilation), pooling,
// BatchNormalization, LayerNormalization, InstanceNormalization, Softmax and LogSoftmax.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/gemm.h"
#include "kernels/packed_weight.h"
#include "onnx/broadcast.h"
#include "onnx/dispatch.h"
#include "onnx/op_registry.h"

namespace cosy::onnx {
namespace {

// Spatial geometry shared by Conv and the pools.
struct Window {
  Shape kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
};

Window read_window(NodeBuild& b, bool has_dilations, bool has_ceil) {
  Window w;
  w.kernel = b.attrs().get_ints("kernel_shape");
  w.strides = b.attrs().get_ints("strides");
  if (has_dilations) w.dilations = b.attrs().get_ints("dilations");
  w.pads = b.attrs().get_ints("pads");
  w.auto_pad = b.attrs().get_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" &&
      w.auto_pad != "SAME_LOWER") {
    fail("auto_pad '", w.auto_pad, "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  }
  if (has_ceil) w.ceil_mode = b.attrs().get_int("ceil_mode", 0) != 0;
  return w;
}

// Fills in defaults for `dims` spatial axes and computes the output sizes.
Shape resolve_window(Window& w, const Shape& in_spatial, const Shape& kernel) {
  const size_t nd = in_spatial.size();
  w.kernel = kernel;
  if (w.strides.empty()) w.strides.assign(nd, 1);
  if (w.dilations.empty()) w.dilations.assign(nd, 1);
  if (w.pads.empty()) w.pads.assign(2 * nd, 0);
  if (w.strides.size() != nd || w.dilations.size() != nd || w.pads.size() != 2 * nd) {
    fail("strides, dilations or pads do not match ", nd, " spatial axes");
  }
  Shape out(nd);
  for (size_t i = 0; i < nd; ++i) {
    if (w.strides[i] <= 0 || w.dilations[i] <= 0 || w.kernel[i] <= 0)
      fail("strides, dilations and kernel sizes must be positive");
    const int64_t span = w.dilations[i] * (w.kernel[i] - 1) + 1;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      out[i] = (in_spatial[i] + w.strides[i] - 1) / w.strides[i];
      const int64_t total =
          std::max<int64_t>(0, (out[i] - 1) * w.strides[i] + span - in_spatial[i]);
      const int64_t small = total / 2;
      w.pads[i] = w.auto_pad == "SAME_UPPER" ? small : total - small;
      w.pads[i + nd] = total - w.pads[i];
      continue;
    }
    if (w.auto_pad == "VALID") {
      w.pads[i] = 0;
      w.pads[i + nd] = 0;
    }
    const int64_t padded = in_spatial[i] + w.pads[i] + w.pads[i + nd];
    const int64_t room = padded - span;  // may be negative: a window larger than the input
    auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
    if (w.ceil_mode) {
      out[i] = floor_div(room + w.strides[i] - 1, w.strides[i]) + 1;
      // A last window that starts in the end padding is dropped (as PyTorch and ONNX Runtime do).
      if (out[i] > 1 && (out[i] - 1) * w.strides[i] >= in_spatial[i] + w.pads[i]) --out[i];
    } else {
      out[i] = floor_div(room, w.strides[i]) + 1;
    }
    if (out[i] <= 0) fail("the window (", span, ") is larger than the padded input (", padded, ")");
  }
  return out;
}

// ---------------------------------------------------------------- Conv

class ConvKernel final : public OpKernel {
 public:
  ConvKernel(Window w, int64_t groups, std::vector<std::shared_ptr<cpu::PackedWeight>> packed)
      : window_(std::move(w)), groups_(groups), packed_(std::move(packed)) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "Conv");
    if (t != DType::F32) unsupported_type("Conv", t);
    if (input_type(in, 1, "Conv") != t) fail("Conv: W has another type");
    return {t};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
    if (x.rank() < 3 || w.rank() != x.rank())
      fail("Conv: X ", shape_str(x.shape()), " and W ", shape_str(w.shape()), " ranks");
    const int64_t nd = static_cast<int64_t>(x.rank()) - 2;
    const int64_t batch = x.dim(0);
    const int64_t cin = x.dim(1);
    const int64_t cout = w.dim(0);
    const int64_t g = groups_;
    if (g <= 0 || cin % g != 0 || cout % g != 0 || w.dim(1) != cin / g) {
      fail("Conv: W ", shape_str(w.shape()), " does not fit ", cin, " input channels in ", g,
           " groups");
    }
    if (bias != nullptr && bias->numel() != cout)
      fail("Conv: B has ", bias->numel(), " values for ", cout, " channels");
    Shape in_sp(x.shape().begin() + 2, x.shape().end());
    Shape kernel(w.shape().begin() + 2, w.shape().end());
    if (!window_.kernel.empty() && window_.kernel != kernel)
      fail("Conv: kernel_shape differs from W");
    Window win = window_;
    Shape out_sp = resolve_window(win, in_sp, kernel);
    Shape shape{batch, cout};
    shape.insert(shape.end(), out_sp.begin(), out_sp.end());
    out[0] = new_tensor(DType::F32, shape);
    const int64_t cg = cin / g;
    const int64_t mg = cout / g;
    const int64_t kk = shape_numel(kernel);
    const int64_t kdim = cg * kk;
    const int64_t positions = shape_numel(out_sp);
    const int64_t in_size = shape_numel(in_sp);
    if (positions == 0 || batch == 0 || cout == 0) return;

    std::vector<std::shared_ptr<cpu::PackedWeight>> packed = packed_;
    if (packed.empty()) packed = pack_weights(w, g);
    const float* px = x.data<float>();
    float* py = out[0].mutable_data<float>();

    // Depthwise (one input and one output channel per group): a direct loop.
    if (cg == 1 && mg == 1) {
      const float* pw = w.data<float>();
      ctx.pool.parallel_for(batch * cout, [&](int64_t bc) {
        const int64_t c = bc % cout;
        const float* xc = px + bc * in_size;
        float* yc = py + bc * positions;
        const float* wc = pw + c * kk;
        for (int64_t p = 0; p < positions; ++p) {
          double acc = 0;
          for_each_tap(win, in_sp, out_sp, p, [&](int64_t tap, int64_t src) {
            if (src >= 0) acc += static_cast<double>(wc[tap]) * xc[src];
          });
          yc[p] = static_cast<float>(acc);
        }
      });
    } else {
      // im2col in blocks of output positions, each block one single-threaded GEMM per group.
      constexpr int64_t kBlock = 128;
      const int64_t blocks = (positions + kBlock - 1) / kBlock;
      ctx.pool.parallel_for(batch * g * blocks, [&](int64_t task) {
        const int64_t blk = task % blocks;
        const int64_t gi = (task / blocks) % g;
        const int64_t n = task / blocks / g;
        const int64_t p0 = blk * kBlock;
        const int64_t rows = std::min(kBlock, positions - p0);
        std::vector<float> cols(static_cast<size_t>(rows * kdim), 0.0f);
        const float* xg = px + (n * cin + gi * cg) * in_size;
        for (int64_t r = 0; r < rows; ++r) {
          float* row = &cols[r * kdim];
          for_each_tap(win, in_sp, out_sp, p0 + r, [&](int64_t tap, int64_t src) {
            if (src < 0) return;
            for (int64_t c = 0; c < cg; ++c) row[c * kk + tap] = xg[c * in_size + src];
          });
        }
        std::vector<float> res(static_cast<size_t>(rows * mg));
        cpu::GemmProblem prob;
        prob.a = cpu::RowGeometry{cols.data(), kdim, 1, 0, kdim};
        prob.m = rows;
        prob.c = res.data();
        prob.ldc = mg;
        const cpu::PackedWeight& pw = *packed[gi];
        cpu::gemm_block(prob, 0, rows, pw, 0, pw.panels(), cpu::GemmEpilogue{});
        float* yg = py + (n * cout + gi * mg) * positions;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < mg; ++j) yg[j * positions + p0 + r] = res[r * mg + j];
        }
      });
    }
    if (bias != nullptr) {
      const float* pb = bias->data<float>();
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t c = 0; c < cout; ++c) {
          float* yc = py + (n * cout + c) * positions;
          for (int64_t p = 0; p < positions; ++p) yc[p] += pb[c];
        }
      }
    }
  }

  // W [M, C/g, k...] as one packed [M/g, C/g · k] weight per group (column = c · kk + tap).
  static std::vector<std::shared_ptr<cpu::PackedWeight>> pack_weights(const Tensor& w,
                                                                      int64_t groups) {
    const int64_t cout = w.dim(0);
    const int64_t mg = cout / groups;
    const int64_t kdim = w.numel() / std::max<int64_t>(cout, 1);
    const float* pw = w.data<float>();
    std::vector<std::shared_ptr<cpu::PackedWeight>> out;
    for (int64_t gi = 0; gi < groups; ++gi) {
      const float* base = pw + gi * mg * kdim;
      out.push_back(std::make_shared<cpu::PackedWeight>(
          mg, kdim, WeightFormat::F32,
          [base, kdim](int64_t m, int64_t k) { return base[m * kdim + k]; }));
    }
    return out;
  }

 private:
  // Calls fn(tap, source offset or -1 in padding) for each kernel tap of output position p.
  template <typename Fn>
  static void for_each_tap(const Window& w, const Shape& in_sp, const Shape& out_sp, int64_t p,
                           Fn&& fn) {
    const size_t nd = in_sp.size();
    int64_t origin[8];
    int64_t rem = p;
    for (size_t i = nd; i-- > 0;) {
      origin[i] = (rem % out_sp[i]) * w.strides[i] - w.pads[i];
      rem /= out_sp[i];
    }
    const int64_t taps = shape_numel(w.kernel);
    for (int64_t t = 0; t < taps; ++t) {
      int64_t tr = t;
      int64_t src = 0;
      bool inside = true;
      int64_t stride = 1;
      for (size_t i = nd; i-- > 0;) {
        const int64_t k = tr % w.kernel[i];
        tr /= w.kernel[i];
        const int64_t pos = origin[i] + k * w.dilations[i];
        if (pos < 0 || pos >= in_sp[i]) inside = false;
        src += pos * stride;
        stride *= in_sp[i];
      }
      fn(t, inside ? src : -1);
    }
  }

  Window window_;
  int64_t groups_;
  std::vector<std::shared_ptr<cpu::PackedWeight>> packed_;
};

std::unique_ptr<OpKernel> make_conv(NodeBuild& b) {
  Window w = read_window(b, true, false);
  const int64_t groups = b.attrs().get_int("group", 1);
  std::vector<std::shared_ptr<cpu::PackedWeight>> packed;
  const Tensor* wt = b.constant_input(1);
  if (wt != nullptr && wt->dtype() == DType::F32 && wt->rank() >= 3 && groups > 0 &&
      wt->dim(0) % groups == 0 &&
      !(wt->dim(1) == 1 && wt->dim(0) == groups)) {  // depthwise convs run a direct loop
    packed = ConvKernel::pack_weights(*wt, groups);
  }
  if (w.kernel.size() > 6) throw Unsupported("Conv with more than 6 spatial axes is not supported");
  return std::make_unique<ConvKernel>(std::move(w), groups, std::move(packed));
}

// ---------------------------------------------------------------- pools

class PoolKernel final : public OpKernel {
 public:
  PoolKernel(const char* name, bool max, bool global, Window w, bool count_include_pad)
      : name_(name),
        max_(max),
        global_(global),
        window_(std::move(w)),
        include_pad_(count_include_pad) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, name_);
    if (!is_float_type(t)) unsupported_type(name_, t);
    return {t};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    if (x.rank() < 3)
      fail(name_, ": input ", shape_str(x.shape()), " needs batch, channel and spatial axes");
    Shape in_sp(x.shape().begin() + 2, x.shape().end());
    Window win = window_;
    Shape kernel = global_ ? in_sp : window_.kernel;
    if (kernel.size() != in_sp.size())
      fail(name_, ": kernel_shape has ", kernel.size(), " axes for ", in_sp.size(),
           " spatial axes");
    if (global_) win.pads.clear(), win.strides.clear();
    Shape out_sp = resolve_window(win, in_sp, kernel);
    Shape shape{x.dim(0), x.dim(1)};
    shape.insert(shape.end(), out_sp.begin(), out_sp.end());
    out[0] = new_tensor(x.dtype(), shape);
    const size_t nd = in_sp.size();
    const int64_t positions = shape_numel(out_sp);
    const int64_t in_size = shape_numel(in_sp);
    const int64_t taps = shape_numel(kernel);
    dispatch_float(x.dtype(), name_, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      ctx.pool.parallel_for(x.dim(0) * x.dim(1), [&](int64_t bc) {
        const T* xc = px + bc * in_size;
        T* yc = py + bc * positions;
        for (int64_t p = 0; p < positions; ++p) {
          int64_t origin[8];
          int64_t rem = p;
          for (size_t i = nd; i-- > 0;) {
            origin[i] = (rem % out_sp[i]) * win.strides[i] - win.pads[i];
            rem /= out_sp[i];
          }
          double acc = max_ ? -std::numeric_limits<double>::infinity() : 0.0;
          int64_t valid = 0;
          int64_t padded = 0;
          for (int64_t t = 0; t < taps; ++t) {
            int64_t tr = t;
            int64_t src = 0;
            int64_t stride = 1;
            bool inside = true;
            bool in_pad_area = true;
            for (size_t i = nd; i-- > 0;) {
              const int64_t k = tr % kernel[i];
              tr /= kernel[i];
              const int64_t pos = origin[i] + k * win.dilations[i];
              if (pos < 0 || pos >= in_sp[i]) inside = false;
              if (pos < -win.pads[i] || pos >= in_sp[i] + win.pads[i + nd]) in_pad_area = false;
              src += pos * stride;
              stride *= in_sp[i];
            }
            if (in_pad_area) ++padded;
            if (!inside) continue;
            ++valid;
            const double v = static_cast<double>(xc[src]);
            acc = max_ ? std::max(acc, v) : acc + v;
          }
          if (!max_)
            acc /= static_cast<double>(std::max<int64_t>(1, include_pad_ ? padded : valid));
          yc[p] = static_cast<T>(acc);
        }
      });
    });
  }

 private:
  const char* name_;
  bool max_, global_;
  Window window_;
  bool include_pad_;
};

std::unique_ptr<OpKernel> make_average_pool(NodeBuild& b) {
  Window w = read_window(b, false, true);
  if (w.kernel.empty()) fail("AveragePool needs kernel_shape");
  const bool include = b.attrs().get_int("count_include_pad", 0) != 0;
  if (w.kernel.size() > 8) throw Unsupported("pools over more than 8 axes are not supported");
  return std::make_unique<PoolKernel>("AveragePool", false, false, std::move(w), include);
}

std::unique_ptr<OpKernel> make_max_pool(NodeBuild& b) {
  Window w = read_window(b, true, true);
  if (w.kernel.empty()) fail("MaxPool needs kernel_shape");
  if (b.attrs().get_int("storage_order", 0) != 0)
    throw Unsupported("MaxPool storage_order 1 is not supported");
  if (b.num_outputs() > 1) throw Unsupported("MaxPool's Indices output is not supported");
  if (w.kernel.size() > 8) throw Unsupported("pools over more than 8 axes are not supported");
  return std::make_unique<PoolKernel>("MaxPool", true, false, std::move(w), false);
}

std::unique_ptr<OpKernel> make_global_average_pool(NodeBuild&) {
  return std::make_unique<PoolKernel>("GlobalAveragePool", false, true, Window{}, false);
}
std::unique_ptr<OpKernel> make_global_max_pool(NodeBuild&) {
  return std::make_unique<PoolKernel>("GlobalMaxPool", true, true, Window{}, false);
}

// ---------------------------------------------------------------- normalisation

class BatchNormKernel final : public OpKernel {
 public:
  explicit BatchNormKernel(float eps) : eps_(eps) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "BatchNormalization");
    if (!is_float_type(t)) unsupported_type("BatchNormalization", t);
    for (size_t i = 1; i < 5; ++i) {
      if (input_type(in, i, "BatchNormalization") != t) {
        throw Unsupported(
            "BatchNormalization with parameters of another type than X is not supported");
      }
    }
    return {t};
  }
  void run(RunContext&, std::span<const Tensor* const> in, std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    if (x.rank() < 2) fail("BatchNormalization: X needs a channel axis");
    const int64_t c = x.dim(1);
    for (size_t i = 1; i < 5; ++i) {
      if (in[i]->numel() != c)
        fail("BatchNormalization: parameter ", i, " has ", in[i]->numel(), " values for ", c,
             " channels");
    }
    out[0] = new_tensor(x.dtype(), x.shape());
    const int64_t inner = c == 0 ? 0 : x.numel() / x.dim(0) / c;
    dispatch_float(x.dtype(), "BatchNormalization", [&](auto tag) {
      using T = decltype(tag);
      const T* s = in[1]->data<T>();
      const T* b = in[2]->data<T>();
      const T* mean = in[3]->data<T>();
      const T* var = in[4]->data<T>();
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      for (int64_t n = 0; n < x.dim(0); ++n) {
        for (int64_t ch = 0; ch < c; ++ch) {
          const T scale = static_cast<T>(s[ch] / std::sqrt(var[ch] + static_cast<T>(eps_)));
          const T shift = static_cast<T>(b[ch] - mean[ch] * scale);
          const int64_t base = (n * c + ch) * inner;
          for (int64_t i = 0; i < inner; ++i) py[base + i] = px[base + i] * scale + shift;
        }
      }
    });
  }

 private:
  float eps_;
};

std::unique_ptr<OpKernel> make_batch_norm(NodeBuild& b) {
  if (b.attrs().get_int("training_mode", 0) != 0)
    throw Unsupported("BatchNormalization in training mode is not supported");
  if (b.num_outputs() > 1)
    throw Unsupported("BatchNormalization's running statistics outputs are not supported");
  b.attrs().ignore("momentum");
  return std::make_unique<BatchNormKernel>(b.attrs().get_float("epsilon", 1e-5f));
}

// LayerNormalization over axes [axis, rank), and InstanceNormalization over the spatial axes.
class LayerNormKernel final : public OpKernel {
 public:
  LayerNormKernel(int64_t axis, float eps, bool instance)
      : axis_(axis), eps_(eps), instance_(instance) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "LayerNormalization");
    if (!is_float_type(t))
      unsupported_type(instance_ ? "InstanceNormalization" : "LayerNormalization", t);
    for (size_t i = 1; i < in.size(); ++i) {
      if (in[i] && *in[i] != t)
        throw Unsupported("normalisation parameters of another type than X are not supported");
    }
    return {t, t, t};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = instance_ ? 2 : normalize_axis(axis_, r, "LayerNormalization: axis");
    if (instance_ && r < 3) fail("InstanceNormalization: X needs batch, channel and spatial axes");
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    const int64_t inner = outer == 0 ? 0 : x.numel() / outer;
    Shape norm_shape(x.shape().begin() + a, x.shape().end());
    // Scale and bias expanded to one value per normalised element (LayerNorm) or channel.
    auto expand = [&](const Tensor* t, double fallback) {
      const int64_t want = instance_ ? x.dim(1) : inner;
      std::vector<double> v(static_cast<size_t>(want), fallback);
      if (t == nullptr) return v;
      if (instance_) {
        if (t->numel() != want) fail("InstanceNormalization: parameters need ", want, " values");
        std::vector<float> f = t->to_float_vector();
        for (int64_t i = 0; i < want; ++i) v[i] = f[i];
        return v;
      }
      if (broadcast_shapes(t->shape(), norm_shape) != norm_shape) {
        fail("LayerNormalization: ", shape_str(t->shape()), " does not broadcast to ",
             shape_str(norm_shape));
      }
      Shape st = broadcast_strides(t->shape(), norm_shape);
      std::vector<float> f = t->to_float_vector();
      const int64_t nr = static_cast<int64_t>(norm_shape.size());
      for (int64_t i = 0; i < want; ++i) {
        int64_t rem = i;
        int64_t off = 0;
        for (int64_t d = nr - 1; d >= 0; --d) {
          off += (rem % norm_shape[d]) * st[d];
          rem /= norm_shape[d];
        }
        v[i] = f[off];
      }
      return v;
    };
    std::vector<double> scale = expand(in.size() > 1 ? in[1] : nullptr, 1.0);
    std::vector<double> bias = expand(in.size() > 2 ? in[2] : nullptr, 0.0);
    out[0] = new_tensor(x.dtype(), x.shape());
    Shape stat_shape = x.shape();
    for (int64_t d = a; d < r; ++d) stat_shape[d] = 1;
    if (out.size() > 1) out[1] = new_tensor(x.dtype(), stat_shape);
    if (out.size() > 2) out[2] = new_tensor(x.dtype(), stat_shape);
    dispatch_float(x.dtype(), "LayerNormalization", [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      ctx.pool.parallel_range(outer, 8, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          const T* row = px + o * inner;
          double mean = 0;
          for (int64_t i = 0; i < inner; ++i) mean += row[i];
          mean /= static_cast<double>(inner);
          double var = 0;
          for (int64_t i = 0; i < inner; ++i) var += (row[i] - mean) * (row[i] - mean);
          var /= static_cast<double>(inner);
          const double inv = 1.0 / std::sqrt(var + static_cast<double>(eps_));
          const int64_t ch = instance_ ? o % x.dim(1) : 0;
          for (int64_t i = 0; i < inner; ++i) {
            const double s = instance_ ? scale[ch] : scale[i];
            const double b = instance_ ? bias[ch] : bias[i];
            py[o * inner + i] = static_cast<T>((row[i] - mean) * inv * s + b);
          }
          if (out.size() > 1 && out[1].numel() > 0)
            out[1].mutable_data<T>()[o] = static_cast<T>(mean);
          if (out.size() > 2 && out[2].numel() > 0)
            out[2].mutable_data<T>()[o] = static_cast<T>(inv);
        }
      });
    });
  }

 private:
  int64_t axis_;
  float eps_;
  bool instance_;
};

std::unique_ptr<OpKernel> make_layer_norm(NodeBuild& b) {
  const int64_t stash = b.attrs().get_int("stash_type", 1);
  if (stash != 1)
    throw Unsupported(cat("LayerNormalization stash_type ", stash, " is not supported"));
  return std::make_unique<LayerNormKernel>(b.attrs().get_int("axis", -1),
                                           b.attrs().get_float("epsilon", 1e-5f), false);
}
std::unique_ptr<OpKernel> make_instance_norm(NodeBuild& b) {
  return std::make_unique<LayerNormKernel>(2, b.attrs().get_float("epsilon", 1e-5f), true);
}

// ---------------------------------------------------------------- Softmax, LogSoftmax

class SoftmaxKernel final : public OpKernel {
 public:
  SoftmaxKernel(int64_t axis, bool log) : axis_(axis), log_(log) {}
  std::vector<DType> infer_types(InputTypes in) const override {
    const DType t = input_type(in, 0, "Softmax");
    if (!is_float_type(t)) unsupported_type(log_ ? "LogSoftmax" : "Softmax", t);
    return {t};
  }
  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& x = *in[0];
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = normalize_axis(axis_, r, "Softmax: axis");
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    int64_t inner = 1;
    for (int64_t d = a + 1; d < r; ++d) inner *= x.dim(d);
    const int64_t n = r == 0 ? 1 : x.dim(a);
    out[0] = new_tensor(x.dtype(), x.shape());
    dispatch_float(x.dtype(), "Softmax", [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      ctx.pool.parallel_range(outer * inner, 64, [&](int64_t b0, int64_t b1) {
        for (int64_t oi = b0; oi < b1; ++oi) {
          const int64_t o = oi / inner;
          const int64_t i = oi % inner;
          auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
          T mx = -std::numeric_limits<T>::infinity();
          for (int64_t k = 0; k < n; ++k) mx = std::max(mx, px[at(k)]);
          T sum = 0;
          for (int64_t k = 0; k < n; ++k) {
            const T e = std::exp(px[at(k)] - mx);
            py[at(k)] = e;
            sum += e;
          }
          for (int64_t k = 0; k < n; ++k) {
            py[at(k)] = log_ ? px[at(k)] - mx - std::log(sum) : py[at(k)] / sum;
          }
        }
      });
    });
  }

 private:
  int64_t axis_;
  bool log_;
};

std::unique_ptr<OpKernel> make_softmax(NodeBuild& b) {
  return std::make_unique<SoftmaxKernel>(b.attrs().get_int("axis", -1), false);
}
std::unique_ptr<OpKernel> make_log_softmax(NodeBuild& b) {
  return std::make_unique<SoftmaxKernel>(b.attrs().get_int("axis", -1), true);
}

constexpr OpSpec kOps[] = {
    {"Conv", 11, make_conv, 2, 3},
    {"AveragePool", 11, make_average_pool, 1, 1},
    {"MaxPool", 12, make_max_pool, 1, 1},
    {"GlobalAveragePool", 1, make_global_average_pool, 1, 1},
    {"GlobalMaxPool", 1, make_global_max_pool, 1, 1},
    {"BatchNormalization", 9, make_batch_norm, 5, 5},
    {"LayerNormalization", 17, make_layer_norm, 2, 3},
    {"InstanceNormalization", 6, make_instance_norm, 3, 3},
    {"Softmax", 13, make_softmax, 1, 1},
    {"LogSoftmax", 13, make_log_softmax, 1, 1},
};

}  // namespace

std::span<const OpSpec> nn_ops() { return kOps; }

}  // namespace cosy::onnx
