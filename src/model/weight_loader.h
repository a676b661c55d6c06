// Reads float weights out of a state_dict for a backend: plain tensors, and weight-norm
// parametrised ones folded at load time (w = g · v / ‖v‖ per output slice, dim 0).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_array.h"
#include "io/torch_checkpoint.h"

namespace cosy {

class WeightLoader {
 public:
  WeightLoader(Backend& backend, const StateDict& sd, WeightFormat format)
      : backend_(backend), sd_(sd), format_(format) {}

  // `name` as a float vector; fails naming the file when it is missing.
  std::vector<float> floats(const std::string& name) const;
  // The same in backend memory (biases, norms, Snake alphas): what the kernels read.
  ConstArray<float> constants(const std::string& name) const;
  // `<base>.weight`, folding weight norm when the checkpoint stores it parametrised.
  std::vector<float> weight(const std::string& base) const;

  std::shared_ptr<const PreparedWeight> linear(const std::string& base, int64_t out,
                                               int64_t in) const;
  // Linears that read the same input stacked into one weight, outputs side by side in the
  // given order, so one GEMM computes them all (q|k|v, gate|up).
  std::shared_ptr<const PreparedWeight> stacked_linear(const std::vector<std::string>& bases,
                                                       const std::vector<int64_t>& outs,
                                                       int64_t in) const;
  std::shared_ptr<const PreparedWeight> conv1d(const std::string& base, int64_t out, int64_t in,
                                               int64_t kernel) const;
  std::shared_ptr<const PreparedWeight> conv_transpose1d(const std::string& base, int64_t in,
                                                         int64_t out, int64_t kernel) const;
  WeightFormat format() const { return format_; }

 private:
  Backend& backend_;
  const StateDict& sd_;
  WeightFormat format_;
};

// g · v / ‖v‖ over every dim but 0 (torch.nn.utils.weight_norm's default dim).
std::vector<float> fold_weight_norm(const std::vector<float>& g, const std::vector<float>& v,
                                    int64_t dim0);

}  // namespace cosy
