// The tensors each stage's checkpoint must hold, derived from the config alone. The same
// list checks a loaded checkpoint and drives the random-weight model writer.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"

namespace cosy {

struct ParamSpec {
  std::string name;  // e.g. "flow.encoder.embed.out.0.weight" without the stage prefix
  Shape shape;
  // Stored under weight norm: either `<base>.parametrizations.weight.original0/1`
  // (torch.nn.utils.parametrizations) or `<base>.weight_g/_v` (the older hook); shape is
  // the folded weight's. A plain `<base>.weight` is accepted too.
  bool weight_norm = false;
  // Present in official checkpoints but unused by inference (Qwen's tied text head).
  bool optional = false;
};

std::vector<ParamSpec> llm_param_specs(const LlmConfig& c);
std::vector<ParamSpec> flow_param_specs(const FlowConfig& c);
std::vector<ParamSpec> hift_param_specs(const HiftConfig& c);

// The checkpoint names a weight-norm spec may be stored under, in preference order.
struct WeightNormNames {
  std::string g, v;
};
std::vector<WeightNormNames> weight_norm_forms(const std::string& weight_name);

// Checks every spec is present with its exact shape and a floating dtype, and that the
// checkpoint holds nothing the config does not explain. Errors name the file, the tensor,
// the expected and the actual shape.
void check_state_dict(const StateDict& sd, const std::vector<ParamSpec>& specs);

// Number of scalar parameters the specs describe (weight-norm counts the folded weight).
int64_t count_parameters(const std::vector<ParamSpec>& specs);

}  // namespace cosy
