// The sgemm of Debian's CPU math libraries, as baselines for bench/kernel_bench: each
// computes C[M, N] = A[M, K] · W[N, K]^T row-major on the number of threads set first.
// One file per library, so each is compiled against its own headers (BLIS and OpenBLAS
// both ship a cblas.h).
#pragma once

#include <cstdint>

namespace cosy::bench {

struct LibraryGemm {
  const char* name;
  void (*set_threads)(int threads);
  void (*sgemm)(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c);
};

LibraryGemm openblas_gemm();
LibraryGemm blis_gemm();
LibraryGemm onednn_gemm();

}  // namespace cosy::bench
