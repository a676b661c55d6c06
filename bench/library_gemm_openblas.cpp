#include <cblas.h>

#include "library_gemm.h"

namespace cosy::bench {

LibraryGemm openblas_gemm() {
  return {"openblas", [](int threads) { openblas_set_num_threads(threads); },
          [](int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                        static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(k), w,
                        static_cast<int>(k), 0.0f, c, static_cast<int>(n));
          }};
}

}  // namespace cosy::bench
