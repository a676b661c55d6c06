// Elementwise activations over a [rows, channels] block (channels-last), used on their own
// and fused into the conv kernels' input copy.
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace cosy::cpu {

// dst[i] = act(src[i]) for one row of `n` channels starting at channel `c0` (Snake's
// alpha is indexed by channel). dst may equal src.
void activate_row(const Activation& act, const float* src, float* dst, int64_t n, int64_t c0 = 0);

// dst[i] = act(gate[i]) * up[i] over one row of `n` channels (SwiGLU).
void gated_row(const Activation& act, const float* gate, const float* up, float* dst, int64_t n);

}  // namespace cosy::cpu
