// Counts what a loaded checkpoint holds: tensors, parameters, dtypes and bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "io/torch_checkpoint.h"

namespace cosy {

struct StageSummary {
  size_t tensors = 0;
  int64_t parameters = 0;  // elements; tied tensors counted once
  size_t bytes = 0;        // of the distinct storages the tensors view
  std::map<std::string, int64_t> parameters_by_dtype;

  std::string dtypes() const;  // "f32" or "f32 (90%), f16 (10%)"
};

StageSummary summarize(const StateDict& sd);

}  // namespace cosy
