#include <blis.h>

#include "library_gemm.h"

namespace cosy::bench {

LibraryGemm blis_gemm() {
  return {"blis", [](int threads) { bli_thread_set_num_threads(threads); },
          [](int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) {
            float one = 1.0f, zero = 0.0f;
            // BLIS takes row and column strides: W stored [N, K], transposed, is the
            // [K, N] operand.
            bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, m, n, k, &one, const_cast<float*>(a), k, 1,
                      const_cast<float*>(w), k, 1, &zero, c, n, 1);
          }};
}

}  // namespace cosy::bench
