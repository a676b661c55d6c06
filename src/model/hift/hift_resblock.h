// HiFT's ResBlock (HiFiGAN/BigVGAN): per dilation, Snake → dilated conv → Snake → conv, added
// to the input. CosyVoice2's convs are centred; CosyVoice3's causal generator pads them on
// the left only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/layers.h"

namespace cosy {

struct HiftResBlock {
  struct Layer {
    ConvLayer conv1, conv2;
    ConstArray<float> alpha1, alpha2;
  };
  std::vector<Layer> layers;

  // y = the block over x, per sequence; `t` is scratch.
  void run(Exec& e, const Batch& x, Batch& y, Batch& t) const;
  // The work of run() over `rows` rows (the convs; the Snakes and residuals are a rounding
  // error beside them).
  double flops(int64_t rows) const {
    double f = 0;
    for (const Layer& l : layers) f += l.conv1.flops(rows) + l.conv2.flops(rows);
    return f;
  }
};

HiftResBlock load_hift_resblock(const WeightLoader& wl, const std::string& prefix, int64_t ch,
                                int64_t kernel, const std::vector<int64_t>& dilations, bool causal);

}  // namespace cosy
