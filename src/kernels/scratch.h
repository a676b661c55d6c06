// Per-thread scratch for kernels: an Arena that a top-level kernel call borrows and that
// is reset when the outermost borrower returns, so steady-state calls allocate nothing.
#pragma once

#include "core/arena.h"

namespace cosy::cpu {

class ScratchScope {
 public:
  ScratchScope();
  ~ScratchScope();
  ScratchScope(const ScratchScope&) = delete;
  ScratchScope& operator=(const ScratchScope&) = delete;
  Arena& arena();
};

}  // namespace cosy::cpu
