// Reduced-precision hazards a model's own weights carry, found by reading them (no forward
// pass): what would overflow or vanish if a stage ran in fp16 or bf16 as an accelerator's
// mixed-precision mode runs it. `cosyserve audit` reports them beside what it measures.
//  - snake_alpha: HiFT's Snake computes x + 1/α·sin²(αx); an |α| below 1/65504 makes 1/α
//    overflow fp16 (and α = 0 gives 1/(α + 1e-9) = 1e9).
//  - weight_range: a weight beyond fp16's largest finite value (65504).
//  - weight_underflow: non-zero weights below fp16's smallest subnormal (2^-24), which
//    become zero in fp16; flagged when they are more than 0.1 % of a tensor.
//  - attention_logit_bound: per LM layer, an upper bound on |q·k|/√d over every input:
//    after RMSNorm the input has norm √hidden, so |q| ≤ σ(W_q·diag g)·√hidden + |b_q| (and
//    the same for k). A bound, not a measurement: flagged when it exceeds 65504, it says the
//    weights allow an overflow, and the audit's measured logits say whether one happens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/torch_checkpoint.h"
#include "model/config.h"

namespace cosy {

struct PrecisionHazard {
  std::string stage;     // llm, flow, hift
  std::string kind;      // snake_alpha, weight_range, weight_underflow, attention_logit_bound
  std::string where;     // the parameter (or layer) where it is worst
  int64_t count = 0;     // values (or layers) affected
  double worst = 0;      // the worst value: the smallest |α|, the largest |w|, the largest bound
  bool flagged = false;  // a hazard for fp16, rather than a figure for the record
  std::string message;
};

inline constexpr double kFp16Max = 65504.0;
inline constexpr double kFp16MinSubnormal = 5.960464477539063e-08;  // 2^-24

// Every weight of one stage's state dict.
std::vector<PrecisionHazard> weight_hazards(const std::string& stage, const StateDict& weights);
// Snake's α among HiFT's weights.
PrecisionHazard snake_alpha_hazard(const StateDict& hift);
// The LM's attention-logit bound, per layer; the worst layer is reported.
PrecisionHazard attention_logit_hazard(const LlmConfig& config, const StateDict& llm);

}  // namespace cosy
