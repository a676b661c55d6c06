// Times every GEMM kernel this CPU runs on one float32 weight shape, with the geometry of A
// the model used, and picks the fastest. Each kernel's output is first checked
// bit-identical to the default kernel's: a kernel that differs is a bug, and fails.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gemm_kernel.h"
#include "kernels/kernel_tuning.h"

namespace cosy::cpu {

struct GemmTuneOptions {
  double seconds_per_kernel = 0.05;  // timing budget of each kernel on each shape and count
  // A kernel replaces the default only when it is at least this much faster: run-to-run
  // noise on a shared host is a few percent, and a choice within it is a coin toss.
  double min_gain = 0.03;
  int64_t max_rows = 2048;  // longer problems are timed at this many rows
};

// The row counts a shape recorded at `recorded_rows` is timed at. A many-row shape: its
// own, at most max_rows. A few-row (decode) shape runs at every count up to
// kGemmStreamRows as streams come and go, and the tuner records it while one stream
// decodes: it is timed at 1, 4 and kGemmStreamRows rows and at its own, and a kernel's
// seconds are their sum, so that a choice made at one stream holds for a full batch.
std::vector<int64_t> timed_row_counts(int64_t recorded_rows,
                                      int64_t max_rows = GemmTuneOptions{}.max_rows);

TunedGemm tune_gemm(ThreadPool& pool, const GemmShape& shape, const RecordedGemm& recorded,
                    const GemmTuneOptions& options = {});

}  // namespace cosy::cpu
