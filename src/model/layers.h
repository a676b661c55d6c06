// Building blocks shared by the flow and HiFT: a layer's prepared weights plus a call that
// runs it over every sequence of a batch at once (one kernel launch per layer, whatever the
// number of streams). Activations are channels-last [rows, channels] per sequence.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_array.h"
#include "model/weight_loader.h"

namespace cosy {

// Where a layer runs: the backend (memory), its kernels and the stream they are queued on.
struct Exec {
  Exec(Backend& backend, Stream& stream) : b(backend), k(backend.primitives()), s(stream) {}
  Backend& b;
  Primitives& k;
  Stream& s;
};

// One sequence's activation, [rows, ch] in backend memory. Model code hands its pointers to
// primitives and never reads or writes the values itself (upload/download below).
struct Act {
  DeviceArray<float> data;
  int64_t rows = 0, ch = 0;
  // Contents are not kept when it grows.
  void resize(Exec& e, int64_t r, int64_t c) {
    rows = r;
    ch = c;
    data.resize(e.b, static_cast<size_t>(r * c));
  }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
  float* row(int64_t i) { return data.data() + i * ch; }
  const float* row(int64_t i) const { return data.data() + i * ch; }
  size_t size() const { return data.size(); }
};
using Batch = std::vector<Act>;

// Host ↔ backend transfers of whole activations (inputs, outputs, traces).
void upload(Exec& e, std::span<const float> host, int64_t rows, int64_t ch, Act& a);
std::vector<float> download(Exec& e, const Act& a);  // waits for the stream
// y = a copy of x.
void copy_act(Exec& e, const Act& x, Act& y);

struct LinearLayer {
  std::shared_ptr<const PreparedWeight> w;
  ConstArray<float> b;  // empty: no bias
  int64_t in = 0, out = 0;
  // y = x W^T + b per sequence; `accumulate` adds into y (a fused residual).
  void run(Exec& e, const Batch& x, Batch& y, bool accumulate = false) const;
  // The same over one [rows, in] matrix into [rows, out] (all streams' rows stacked, so
  // the weight streams from memory once).
  void run(Exec& e, const float* x, float* y, int64_t rows, bool accumulate = false) const;
  double flops(int64_t rows) const { return 2.0 * static_cast<double>(rows * in * out); }
};

struct LayerNormLayer {
  ConstArray<float> w, b;
  float eps = 1e-5f;
  void run(Exec& e, const Batch& x, Batch& y) const;
};

struct ConvLayer {
  std::shared_ptr<const PreparedWeight> w;
  ConstArray<float> b;
  Conv1dArgs shape;  // geometry; run() fills weight, bias, pre and accumulate
  void run(Exec& e, const Batch& x, Batch& y, Activation pre = {}, bool accumulate = false) const;
  double flops(int64_t rows_out) const {
    const int64_t inputs_per_group = shape.in_channels / shape.groups;
    return 2.0 *
           static_cast<double>(inputs_per_group * shape.out_channels * shape.kernel * rows_out);
  }
};

LinearLayer load_linear(const WeightLoader& wl, const std::string& base, int64_t out, int64_t in,
                        bool bias = true);
LayerNormLayer load_layer_norm(const WeightLoader& wl, const std::string& base, float eps = 1e-5f);
// A stride-1 conv with the given zero padding (causal: pad_left = kernel - 1).
ConvLayer load_conv(const WeightLoader& wl, const std::string& base, int64_t out, int64_t in,
                    int64_t kernel, int64_t pad_left, int64_t pad_right, int64_t stride = 1,
                    int64_t dilation = 1);

// In place over every sequence.
void activate(Exec& e, Batch& x, Activation act);

}  // namespace cosy
