// Which micro-kernel runs a GEMM, chosen per weight format, shape and regime: the tile of
// the many-rows (compute-bound) path for float32 weights, and the few-rows (decode,
// memory-bound) kernel for float32, fp16 and int8 weights.
//
// Every kernel gives bit-identical results (gemm_f32_avx512.cpp and gemm_stream_avx512.cpp
// say why), so the choice is speed alone, and the best one differs by machine: AVX-512
// tiles double the FMA rate on a core with two 512-bit FMA units and gain little where zmm
// is split in halves.
// `cosyserve tune` measures each shape and writes the choices (kernels/kernel_tuning.h);
// the commands that load a model install them at start. Without them every shape runs the
// AVX2 kernel.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kernels/gemm.h"

namespace cosy::cpu {

enum class GemmKernel : uint8_t {
  Avx2,                 // 6 rows × 1 panel, ymm (gemm.cpp): the default
  Avx512Rows6Panels4,   // zmm, 24 accumulators
  Avx512Rows8Panels3,   // zmm, 24 accumulators
  Avx512Rows12Panels2,  // zmm, 24 accumulators
  Avx512Stream,         // few rows: 16 weights a zmm, four panels read at once
};

// A GEMM task's regime: more than kGemmStreamRows rows (compute-bound), or up to it (each
// task streams its weights once: decode).
enum class GemmRows : uint8_t { Many, Few };

// k values per block of every float32 kernel: a 16-wide B block of 256 k (16 KB) stays in
// L1, and all kernels sum the same blocks so that they round alike.
inline constexpr int64_t kGemmBlockK = 256;
// Up to this many rows a GEMM task streams its weights once (decode, memory-bound).
inline constexpr int64_t kGemmStreamRows = 24;

std::string_view gemm_kernel_name(GemmKernel kernel);
std::optional<GemmKernel> parse_gemm_kernel(std::string_view name);
// Whether this CPU runs the AVX-512 tiles (AVX512F).
bool cpu_has_avx512f();
// The kernels this CPU can run, the default first; with a format and a regime, those that
// run it (many rows: the float32 tiles; few rows: the streaming kernel for float32, fp16
// and int8; bf16 and w8a8: the default alone).
std::span<const GemmKernel> gemm_kernels_on_this_cpu();
// Their names, "avx2, avx512-6x64, ...", for messages.
std::string gemm_kernel_list();
std::vector<GemmKernel> gemm_kernels_for(WeightFormat format, GemmRows regime);
// Whether `kernel` runs `format` weights in `regime` (the default runs everything).
bool gemm_kernel_runs(GemmKernel kernel, WeightFormat format, GemmRows regime);

// A weight's shape as the GEMM sees it (its format, N outputs, K = taps × tap_width) and the
// regime a choice for it governs.
struct GemmShape {
  int64_t n = 0;
  int64_t taps = 1;
  int64_t tap_width = 0;
  WeightFormat format = WeightFormat::F32;
  GemmRows regime = GemmRows::Many;
  auto operator<=>(const GemmShape&) const = default;
};

// Kernels chosen per shape; shapes not listed run `fallback` (AVX2 unless set: the
// benchmarks set it to time one kernel on every shape).
class GemmKernelChoices {
 public:
  // Fail for a kernel this CPU cannot run.
  void set(GemmShape shape, GemmKernel kernel);
  void set_fallback(GemmKernel kernel);
  GemmKernel for_shape(const GemmShape& shape) const;

 private:
  std::map<GemmShape, GemmKernel> entries_;
  GemmKernel fallback_ = GemmKernel::Avx2;
};

// The process-wide choices gemm() reads (none: defaults). Choices belong to the machine,
// not to a model, so they are process-wide like the CPU's features; installed once at
// load, before streams run, and never modified after (a new install replaces them).
void install_gemm_kernel_choices(std::shared_ptr<const GemmKernelChoices> choices);

// COSY_GEMM_KERNEL's kernel, if set; throws Error for a name that is not a kernel or a
// kernel this CPU cannot run (commands check it at start, before any model code runs).
std::optional<GemmKernel> forced_gemm_kernel();

// The kernel gemm() uses for a shape: COSY_GEMM_KERNEL=<name> if set (every shape: for
// running the golden tests on each kernel), else the installed choice, else the default.
GemmKernel gemm_kernel_for(const GemmShape& shape);

// gemm_block() with a chosen kernel (gemm_f32_avx512.cpp); Avx2 is gemm_block() itself.
void gemm_block_f32_avx512(const GemmProblem& p, int64_t m_begin, int64_t m_end,
                           const PackedWeight& w, int64_t panel_begin, int64_t panel_end,
                           const GemmEpilogue& epi, GemmKernel kernel);
// gemm_block()'s few-rows path on zmm for float32, fp16 and int8 weights
// (gemm_stream_avx512.cpp).
void gemm_block_stream_avx512(const GemmProblem& p, int64_t m_begin, int64_t m_end,
                              const PackedWeight& w, int64_t panel_begin, int64_t panel_end,
                              const GemmEpilogue& epi);

// gemm() with the given kernels instead of the chosen ones: `many` for tasks of more than
// kGemmStreamRows rows, `few` for the others.
void gemm_with_kernels(ThreadPool& pool, std::span<const GemmProblem> problems,
                       const PackedWeight& w, const GemmEpilogue& epi, GemmKernel many,
                       GemmKernel few);
// gemm() with `kernel` in the regime it runs and the default in the other (the tuner's
// timing, and the tests that compare kernels); fails for a kernel that runs neither.
void gemm_with_kernel(ThreadPool& pool, std::span<const GemmProblem> problems,
                      const PackedWeight& w, const GemmEpilogue& epi, GemmKernel kernel);

// Every GEMM shape gemm() runs while a recorder is active, in each regime that has a
// kernel to choose, is added to it with the largest row count seen and the geometry of A,
// so that the tuner times the model's real shapes. One recorder at a time; destroy it only
// after the GEMMs it watches have ended.
struct RecordedGemm {
  int64_t rows = 0;        // the largest problem seen
  int64_t row_stride = 0;  // A's geometry in that call
  int64_t tap_stride = 0;
};
class GemmShapeRecorder {
 public:
  GemmShapeRecorder();
  ~GemmShapeRecorder();
  GemmShapeRecorder(const GemmShapeRecorder&) = delete;
  GemmShapeRecorder& operator=(const GemmShapeRecorder&) = delete;
  std::map<GemmShape, RecordedGemm> shapes() const;

  void add(const GemmShape& shape, const GemmProblem& p);  // called by gemm()

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cosy::cpu
