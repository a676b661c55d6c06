#include <dnnl.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>

#include "library_gemm.h"

namespace cosy::bench {

LibraryGemm onednn_gemm() {
  return {"onednn", [](int threads) { omp_set_num_threads(threads); },
          [](int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) {
            if (dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, w, k, 0.0f, c, n) != dnnl_success) {
              std::fprintf(stderr, "dnnl_sgemm failed\n");
              std::exit(1);
            }
          }};
}

}  // namespace cosy::bench
