// A checking backend: another backend's kernels, with "device" memory the host cannot
// touch. Its allocations and uploaded constants are addresses mapped with no access; the
// kernels reach the same bytes through a second mapping. Model or runtime code that reads
// or writes backend memory itself, instead of through a primitive or Backend::copy, faults
// at once; a primitive given host memory where backend memory belongs fails with a clear
// error. Running the pipeline on it shows that a device backend (CUDA, Ascend) needs no
// change to the model code.
#pragma once

#include <memory>

#include "core/backend.h"

namespace cosy {

// `inner` runs the kernels (its memory is the host's, as the CPU backend's is).
std::unique_ptr<Backend> create_guarded_backend(std::unique_ptr<Backend> inner);

// What a guarded backend has handed out, e.g. to show that a steady state allocates nothing.
struct GuardedMemoryStats {
  int64_t allocations = 0;  // device allocations and constants so far
  int64_t live = 0;         // not yet freed
};
// Fails unless `backend` came from create_guarded_backend.
GuardedMemoryStats guarded_memory_stats(const Backend& backend);

}  // namespace cosy
