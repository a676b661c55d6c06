#include "model/layers.h"

#include "core/error.h"

namespace cosy {

void LinearLayer::run(Exec& e, const Batch& x, Batch& y, bool accumulate) const {
  y.resize(x.size());
  std::vector<Segment> segs(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].ch != in) fail("linear: input has ", x[i].ch, " channels, expected ", in);
    if (accumulate) {
      if (y[i].rows != x[i].rows || y[i].ch != out) fail("linear: accumulate shape mismatch");
    } else {
      y[i].resize(e, x[i].rows, out);
    }
    segs[i] = {x[i].ptr(), x[i].rows, y[i].ptr()};
  }
  e.k.linear(e.s, segs, {w.get(), b.data(), accumulate});
}

void LinearLayer::run(Exec& e, const float* x, float* y, int64_t rows, bool accumulate) const {
  const Segment seg{x, rows, y};
  e.k.linear(e.s, {&seg, 1}, {w.get(), b.data(), accumulate});
}

void LayerNormLayer::run(Exec& e, const Batch& x, Batch& y) const {
  y.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (&x[i] != &y[i]) y[i].resize(e, x[i].rows, x[i].ch);
    e.k.layer_norm(e.s, x[i].ptr(), y[i].ptr(), x[i].rows, x[i].ch, w.data(), b.data(), eps);
  }
}

void ConvLayer::run(Exec& e, const Batch& x, Batch& y, Activation pre, bool accumulate) const {
  Conv1dArgs a = shape;
  a.weight = w.get();
  a.bias = b.data();
  a.pre = pre;
  a.accumulate = accumulate;
  y.resize(x.size());
  std::vector<Segment> segs(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].ch != a.in_channels)
      fail("conv1d: input has ", x[i].ch, " channels, expected ", a.in_channels);
    const int64_t t_out = a.out_length(x[i].rows);
    if (accumulate) {
      if (y[i].rows != t_out || y[i].ch != a.out_channels)
        fail("conv1d: accumulate shape mismatch");
    } else {
      y[i].resize(e, t_out, a.out_channels);
    }
    segs[i] = {x[i].ptr(), x[i].rows, y[i].ptr()};
  }
  e.k.conv1d(e.s, segs, a);
}

LinearLayer load_linear(const WeightLoader& wl, const std::string& base, int64_t out, int64_t in,
                        bool bias) {
  LinearLayer l;
  l.w = wl.linear(base, out, in);
  if (bias) l.b = wl.constants(base + ".bias");
  l.in = in;
  l.out = out;
  return l;
}

LayerNormLayer load_layer_norm(const WeightLoader& wl, const std::string& base, float eps) {
  return {wl.constants(base + ".weight"), wl.constants(base + ".bias"), eps};
}

ConvLayer load_conv(const WeightLoader& wl, const std::string& base, int64_t out, int64_t in,
                    int64_t kernel, int64_t pad_left, int64_t pad_right, int64_t stride,
                    int64_t dilation) {
  ConvLayer c;
  c.w = wl.conv1d(base, out, in, kernel);
  c.b = wl.constants(base + ".bias");
  c.shape.in_channels = in;
  c.shape.out_channels = out;
  c.shape.kernel = kernel;
  c.shape.stride = stride;
  c.shape.dilation = dilation;
  c.shape.pad_left = pad_left;
  c.shape.pad_right = pad_right;
  return c;
}

void activate(Exec& e, Batch& x, Activation act) {
  for (auto& a : x) e.k.activation(e.s, a.ptr(), a.rows, a.ch, act);
}

void upload(Exec& e, std::span<const float> host, int64_t rows, int64_t ch, Act& a) {
  if (static_cast<int64_t>(host.size()) != rows * ch)
    fail("upload: ", host.size(), " values for [", rows, ", ", ch, "]");
  a.resize(e, rows, ch);
  e.b.copy(e.s, a.ptr(), host.data(), host.size() * sizeof(float));
}

std::vector<float> download(Exec& e, const Act& a) {
  std::vector<float> host(a.size());
  e.b.copy(e.s, host.data(), a.ptr(), host.size() * sizeof(float));
  e.s.synchronize();
  return host;
}

void copy_act(Exec& e, const Act& x, Act& y) {
  y.resize(e, x.rows, x.ch);
  e.b.copy(e.s, y.ptr(), x.ptr(), x.size() * sizeof(float));
}

}  // namespace cosy
