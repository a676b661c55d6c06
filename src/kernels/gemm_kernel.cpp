#include "kernels/gemm_kernel.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace cosy::cpu {

namespace {

struct KernelName {
  GemmKernel kernel;
  std::string_view name;
};
constexpr std::array kKernelNames{
    KernelName{GemmKernel::Avx2, "avx2"},
    KernelName{GemmKernel::Avx512Rows6Panels4, "avx512-6x64"},
    KernelName{GemmKernel::Avx512Rows8Panels3, "avx512-8x48"},
    KernelName{GemmKernel::Avx512Rows12Panels2, "avx512-12x32"},
    KernelName{GemmKernel::Avx512Stream, "avx512-stream"},
};

// Installed tables are kept for the process's life, so that a reader's pointer stays
// valid without a lock or a reference count on the GEMM's path; installs are rare.
std::mutex g_install_mutex;
std::vector<std::shared_ptr<const GemmKernelChoices>> g_installed;
std::atomic<const GemmKernelChoices*> g_current{nullptr};

std::atomic<GemmShapeRecorder*> g_recorder{nullptr};

void require_runs_here(GemmKernel kernel) {
  if (kernel != GemmKernel::Avx2 && !cpu_has_avx512f()) {
    fail("GEMM kernel ", gemm_kernel_name(kernel),
         " needs AVX512F, which this CPU lacks; it runs: ", gemm_kernel_list());
  }
}

}  // namespace

// Read once; a bad value is kept as its message and fails every call alike.
std::optional<GemmKernel> forced_gemm_kernel() {
  struct Forced {
    std::optional<GemmKernel> kernel;
    std::string error;
  };
  static const Forced forced = []() -> Forced {
    const char* env = std::getenv("COSY_GEMM_KERNEL");
    if (env == nullptr || *env == '\0') return {};
    const auto kernel = parse_gemm_kernel(env);
    if (!kernel) {
      return {std::nullopt,
              cat("COSY_GEMM_KERNEL=", env, " names no GEMM kernel; one of: ", gemm_kernel_list())};
    }
    try {
      require_runs_here(*kernel);
    } catch (const Error& e) {
      return {std::nullopt, cat("COSY_GEMM_KERNEL: ", e.what())};
    }
    return {kernel, ""};
  }();
  if (!forced.error.empty()) fail(forced.error);
  return forced.kernel;
}

std::string_view gemm_kernel_name(GemmKernel kernel) {
  for (const auto& [k, name] : kKernelNames) {
    if (k == kernel) return name;
  }
  return "unknown";
}

std::optional<GemmKernel> parse_gemm_kernel(std::string_view name) {
  for (const auto& [k, n] : kKernelNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

bool cpu_has_avx512f() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

std::span<const GemmKernel> gemm_kernels_on_this_cpu() {
  static constexpr std::array kAll{GemmKernel::Avx2, GemmKernel::Avx512Rows6Panels4,
                                   GemmKernel::Avx512Rows8Panels3, GemmKernel::Avx512Rows12Panels2,
                                   GemmKernel::Avx512Stream};
  return cpu_has_avx512f() ? std::span<const GemmKernel>(kAll)
                           : std::span<const GemmKernel>(kAll.data(), 1);
}

std::string gemm_kernel_list() {
  std::string out;
  for (const GemmKernel k : gemm_kernels_on_this_cpu()) {
    if (!out.empty()) out += ", ";
    out += gemm_kernel_name(k);
  }
  return out;
}

bool gemm_kernel_runs(GemmKernel kernel, WeightFormat format, GemmRows regime) {
  switch (kernel) {
    case GemmKernel::Avx2:
      return true;
    case GemmKernel::Avx512Rows6Panels4:
    case GemmKernel::Avx512Rows8Panels3:
    case GemmKernel::Avx512Rows12Panels2:
      return format == WeightFormat::F32 && regime == GemmRows::Many;
    case GemmKernel::Avx512Stream:
      return regime == GemmRows::Few && (format == WeightFormat::F32 ||
                                         format == WeightFormat::F16 || format == WeightFormat::I8);
  }
  return false;
}

std::vector<GemmKernel> gemm_kernels_for(WeightFormat format, GemmRows regime) {
  std::vector<GemmKernel> out;
  for (const GemmKernel k : gemm_kernels_on_this_cpu()) {
    if (gemm_kernel_runs(k, format, regime)) out.push_back(k);
  }
  return out;
}

void GemmKernelChoices::set(GemmShape shape, GemmKernel kernel) {
  require_runs_here(kernel);
  if (!gemm_kernel_runs(kernel, shape.format, shape.regime)) {
    fail("GEMM kernel ", gemm_kernel_name(kernel), " does not run ",
         weight_format_name(shape.format), " weights with ",
         shape.regime == GemmRows::Few ? "few" : "many", " rows");
  }
  entries_[shape] = kernel;
}

void GemmKernelChoices::set_fallback(GemmKernel kernel) {
  require_runs_here(kernel);
  fallback_ = kernel;
}

GemmKernel GemmKernelChoices::for_shape(const GemmShape& shape) const {
  const auto it = entries_.find(shape);
  if (it != entries_.end()) return it->second;
  return gemm_kernel_runs(fallback_, shape.format, shape.regime) ? fallback_ : GemmKernel::Avx2;
}

void install_gemm_kernel_choices(std::shared_ptr<const GemmKernelChoices> choices) {
  const std::lock_guard lock(g_install_mutex);
  const GemmKernelChoices* raw = choices.get();
  if (choices) g_installed.push_back(std::move(choices));
  g_current.store(raw, std::memory_order_release);
}

GemmKernel gemm_kernel_for(const GemmShape& shape) {
  if (const auto forced = forced_gemm_kernel()) {
    return gemm_kernel_runs(*forced, shape.format, shape.regime) ? *forced : GemmKernel::Avx2;
  }
  const GemmKernelChoices* choices = g_current.load(std::memory_order_acquire);
  return choices != nullptr ? choices->for_shape(shape) : GemmKernel::Avx2;
}

struct GemmShapeRecorder::State {
  mutable std::mutex mutex;
  std::map<GemmShape, RecordedGemm> shapes;
};

GemmShapeRecorder::GemmShapeRecorder() : state_(std::make_unique<State>()) {
  GemmShapeRecorder* expected = nullptr;
  if (!g_recorder.compare_exchange_strong(expected, this)) {
    fail("GemmShapeRecorder: another recorder is active");
  }
}

GemmShapeRecorder::~GemmShapeRecorder() { g_recorder.store(nullptr); }

std::map<GemmShape, RecordedGemm> GemmShapeRecorder::shapes() const {
  const std::lock_guard lock(state_->mutex);
  return state_->shapes;
}

void GemmShapeRecorder::add(const GemmShape& shape, const GemmProblem& p) {
  const std::lock_guard lock(state_->mutex);
  RecordedGemm& r = state_->shapes[shape];
  if (p.m > r.rows) r = {p.m, p.a.row_stride, p.a.tap_stride};
}

// Called by gemm() for every problem of every call (gemm.cpp): without a recorder, one
// atomic load.
void record_gemm_shape(const GemmShape& shape, const GemmProblem& p) {
  GemmShapeRecorder* r = g_recorder.load(std::memory_order_acquire);
  if (r == nullptr) return;
  if (gemm_kernels_for(shape.format, shape.regime).size() < 2) return;  // nothing to choose
  r->add(shape, p);
}

}  // namespace cosy::cpu
