// The CPU GEMM: C[M, N] (+)= A[M, K] · W[N, K]^T + bias, with W packed (packed_weight.h).
// A is never packed: rows are read in place through RowGeometry, which also describes an
// implicit im2col, so a dilated/strided conv is the same GEMM with no copy. Many
// independent problems (one per stream) sharing one weight run in one parallel call.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "kernels/packed_weight.h"

namespace cosy::cpu {

// Column kk = tap * tap_width + c of row m lives at
//   base + m * row_stride + tap * tap_stride + c.
// A dense matrix with leading dimension lda: taps = 1, tap_width = K, row_stride = lda.
struct RowGeometry {
  const float* base = nullptr;
  int64_t row_stride = 0;
  int64_t taps = 1;
  int64_t tap_stride = 0;
  int64_t tap_width = 0;
};

struct GemmProblem {
  RowGeometry a;
  int64_t m = 0;
  float* c = nullptr;
  int64_t ldc = 0;
};

struct GemmEpilogue {
  const float* bias = nullptr;  // [N]
  bool accumulate = false;      // C += result
};

// Runs every problem against the same weight (N = w.out_features(); K = taps * tap_width
// must equal w.in_features()), split into tasks over rows and 16-column panels.
void gemm(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
          const GemmEpilogue& epi);

// gemm() for WeightFormat::BF16 (gemm_avx512.cpp, AVX512_BF16, or AMX tiles where
// bf16_uses_amx()): A rounded to bf16, float32 sums. gemm() hands bf16 weights to it.
void gemm_bf16(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
               const GemmEpilogue& epi);
// Whether this CPU has AMX-BF16 (AMX-INT8) tiles and the OS granted them to this process.
bool cpu_has_amx_bf16();
bool cpu_has_amx_int8();
// Whether bf16 GEMMs run on AMX tiles: by default wherever cpu_has_amx_bf16(). The sums
// then go in another order than AVX512_BF16's (within bf16's tolerance): one kernel for
// the whole process, so a row's result never depends on which call it was in.
bool bf16_uses_amx();
// Whether w8a8 GEMMs run on AMX tiles (by default wherever cpu_has_amx_int8()): the same
// bits as AVX512-VNNI's, as both sum each group exactly in int32.
bool w8a8_uses_amx();
// Turns AMX off (AVX512_BF16 and AVX512-VNNI for every GEMM) or back on; on is an Error
// where the CPU has no tiles. For comparisons (kernel_bench, flow_bench) and tests; not
// while GEMMs run.
void set_amx(bool on);
// gemm() for WeightFormat::W8A8 (gemm_avx512.cpp, AVX512-VNNI or AMX-INT8 tiles where
// w8a8_uses_amx()): each row of A quantised to
// int8 with one scale per kW8a8GroupK values of k (max |x| → 127), exact int32 sums per
// group, each scaled by its group's scale and summed in float32, then by the column's.
inline constexpr int64_t kW8a8GroupK = 128;
void gemm_w8a8(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
               const GemmEpilogue& epi);

// gemm_f32_panels with bf16 products (AVX512_BF16 only): A's rows are rounded to bf16
// pairs, and B is in pair panels, panel p at b + p * panel_stride as [k/2][16][2] (k rounded
// up to even, zero-padded). Attention's Q·Kᵀ and P·V on a bf16 flow.
void gemm_bf16_panels(const float* a, int64_t lda, int64_t m, int64_t k, const uint16_t* b,
                      int64_t panel_stride, int64_t panels, float* c, int64_t ldc);
// One [rows][16] float panel (rows even) as a [rows/2][16][2] bf16 pair panel.
void pair_panel_bf16(const float* panel, int64_t rows, uint16_t* out);

// Single-threaded core over one problem and a range of panels; used by gemm() and by
// callers that already run inside a pool task. Not for bf16 or w8a8 weights.
void gemm_block(const GemmProblem& p, int64_t m_begin, int64_t m_end, const PackedWeight& w,
                int64_t panel_begin, int64_t panel_end, const GemmEpilogue& epi);

// C[M, 16 · panels] (+)= A[M, K] · B (added when `accumulate`), single-threaded, with the same
// micro-kernel, for operands that are already laid out in 16-column panels: row k of
// column panel p is 16 floats at b + p * panel_stride + k * ldb. A row-major [K, N]
// matrix is panel_stride = 16, ldb = its row stride; a panel-packed one is
// panel_stride = K * 16, ldb = 16. Attention's Q·Kᵀ and P·V run on it.
void gemm_f32_panels(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb,
                     int64_t panel_stride, int64_t panels, float* c, int64_t ldc,
                     bool accumulate = false);

}  // namespace cosy::cpu
