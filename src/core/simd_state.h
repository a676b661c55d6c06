// The upper halves of the vector registers, before a loop of scalar libm calls.
//
// glibc's exp/log wrappers are legacy-SSE code. When a caller leaves the upper halves of
// the YMM/ZMM registers dirty, every such call on Intel cores pays an SSE/AVX transition:
// measured here, 6564 calls of std::exp went from 45 µs to 800 µs. GCC is meant to clear
// the state at function exits but does not on every path (it missed one in the sampler,
// after a vectorized std::count), so loops that call libm per element clear it themselves.
#pragma once

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace cosy {

inline void clear_simd_upper_state() {
#if defined(__AVX__)
  _mm256_zeroupper();
#endif
}

}  // namespace cosy
