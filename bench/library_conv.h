// oneDNN's 1-D convolutions, as the baseline for bench/kernel_bench's convolution shapes:
// the primitives the official code's torch runs on CPU. Input and output are laid out as
// ours ([T][C], oneDNN's nwc); the weights are reordered once into the layout oneDNN picks
// for the shape (format any), so only the convolution itself is timed.
#pragma once

#include <cstdint>
#include <memory>

namespace cosy::bench {

class OnednnConv1d {
 public:
  // A convolution (weights [cout][cin][k], torch's layout) or, with `transposed`, a
  // transposed one (weights [cin][cout][k]); `length` input frames.
  OnednnConv1d(bool transposed, int64_t cin, int64_t cout, int64_t kernel, int64_t stride,
               int64_t dilation, int64_t pad, int64_t length, const float* weights);
  ~OnednnConv1d();
  OnednnConv1d(const OnednnConv1d&) = delete;
  OnednnConv1d& operator=(const OnednnConv1d&) = delete;

  int64_t out_length() const;
  int64_t out_values() const;  // out_length × cout
  // x: [length][cin]; y: [out_length][cout].
  void run(const float* x, float* y);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cosy::bench
