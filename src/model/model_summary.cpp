#include "model/model_summary.h"

#include <set>

#include "core/error.h"

namespace cosy {

StageSummary summarize(const StateDict& sd) {
  StageSummary s;
  std::set<std::pair<const std::byte*, size_t>> seen;  // (data, bytes): tied views count once
  for (const std::string& name : sd.names()) {
    const Tensor& t = sd.at(name);
    ++s.tensors;
    if (!seen.insert({t.raw(), t.nbytes()}).second) continue;
    s.parameters += t.numel();
    s.bytes += t.nbytes();
    s.parameters_by_dtype[std::string(dtype_name(t.dtype()))] += t.numel();
  }
  return s;
}

std::string StageSummary::dtypes() const {
  if (parameters_by_dtype.size() == 1) return parameters_by_dtype.begin()->first;
  std::string out;
  for (const auto& [name, n] : parameters_by_dtype) {
    if (!out.empty()) out += ", ";
    out += cat(name, " (", parameters > 0 ? 100 * n / parameters : 0, "%)");
  }
  return out;
}

}  // namespace cosy
