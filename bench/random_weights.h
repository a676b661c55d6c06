// Random weights for a model part, from its parameter schema: N(0, 0.02) everywhere, with
// the tensors `ones` picks set to 1 (gains and Snake alphas, so activations keep their
// scale and no denormal slow path distorts a timing).
#pragma once

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "io/torch_checkpoint.h"
#include "model/param_schema.h"

namespace cosy::bench {

inline StateDict random_weights(const std::vector<ParamSpec>& specs, std::string label,
                                const std::function<bool(const ParamSpec&)>& ones) {
  StateDict sd;
  sd.label = std::move(label);
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.02f);
  for (const ParamSpec& s : specs) {
    Tensor t = Tensor::zeros(DType::F32, s.shape);
    float* p = t.mutable_data<float>();
    const bool one = ones(s);
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = one ? 1.0f : d(rng);
    sd.add(s.name, t);
  }
  return sd;
}

}  // namespace cosy::bench
