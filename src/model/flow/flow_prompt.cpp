#include "model/flow/flow_prompt.h"

#include <cmath>

#include "core/error.h"

namespace cosy {
namespace {

bool all_finite(std::span<const float> v) {
  for (const float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

}  // namespace

void check_flow_prompt(const FlowConfig& config, std::span<const int32_t> prompt_tokens,
                       std::span<const float> prompt_feat, std::span<const float> embedding) {
  const int64_t bins = config.output_size;
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  for (size_t i = 0; i < prompt_tokens.size(); ++i) {
    if (prompt_tokens[i] < 0 || prompt_tokens[i] >= config.vocab_size)
      fail("flow: prompt speech token ", prompt_tokens[i], " at ", i, " is outside [0, ",
           config.vocab_size, ")");
  }
  const auto feat_values = static_cast<int64_t>(prompt_feat.size());
  if (feat_values % bins != 0)
    fail("flow: prompt mel has ", feat_values, " values, not a whole number of ", bins,
         "-bin frames");
  if (feat_values / bins != tp * config.token_mel_ratio) {
    fail("flow: prompt mel has ", feat_values / bins, " frames but ", tp, " prompt tokens need ",
         tp * config.token_mel_ratio);
  }
  if (!all_finite(prompt_feat)) fail("flow: the prompt mel has a non-finite value");
  if (static_cast<int64_t>(embedding.size()) != config.spk_embed_dim) {
    fail("flow: speaker embedding has ", embedding.size(), " values, expected ",
         config.spk_embed_dim);
  }
  if (!all_finite(embedding)) fail("flow: the speaker embedding has a non-finite value");
}

}  // namespace cosy
