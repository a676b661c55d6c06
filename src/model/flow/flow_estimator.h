// CosyVoice2's flow-matching vector field (CausalConditionalDecoder, a Matcha-TTS U-Net
// made causal): time embedding → [x | mu | spks | cond] → causal ResNet + transformer
// blocks (down, mid ×N, up with the skip connection) → causal final block → projection.
// Attention is full, or chunk-causal (static_chunk_size frames, all left chunks by default)
// when streaming. Weights only; one call evaluates a batch of independent sequences, e.g.
// the conditional and CFG halves of several streams.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"
#include "model/flow/flow_state.h"
#include "model/layers.h"

namespace cosy {

struct EstimatorInput {
  const Act* x = nullptr;     // [T, mel bins]
  const Act* mu = nullptr;    // [T, mel bins]; null: zeros (the CFG half)
  const Act* cond = nullptr;  // [T, mel bins]; null: zeros
  const Act* spks = nullptr;  // [1, spk_emb_dim]; null: zeros
  float t = 0;
  bool chunked = false;
  // Incremental streaming (chunked only): x's first row is frame state->committed; the
  // state supplies what earlier frames left and afterwards keeps frames before `commit`.
  FlowEstimatorState* state = nullptr;
  int64_t commit = 0;
};

class FlowEstimator {
 public:
  FlowEstimator(Backend& backend, const CfmConfig& config, int64_t mel_bins,
                const StateDict& weights, WeightFormat format);
  ~FlowEstimator();
  FlowEstimator(const FlowEstimator&) = delete;
  FlowEstimator& operator=(const FlowEstimator&) = delete;

  // out[i] = v(x_i, t_i | mu_i, spks_i, cond_i), [T_i, mel bins].
  void estimate(std::span<const EstimatorInput> batch, Batch& out) const;

  // Multiply-adds ×2 of one pass over `frames` new frames after `past` cached ones, with
  // chunk-causal attention of `chunk` frames (the config's left chunks), or full (0).
  double flops(int64_t frames, int64_t past = 0, int64_t chunk = 0) const;
  size_t weight_bytes() const;

 private:
  struct Weights;
  struct Workspaces;
  Backend& backend_;
  CfmConfig config_;
  int64_t mel_bins_;
  bool bf16_attention_;  // bf16 weights: the attention's products in bf16 too
  std::unique_ptr<Weights> w_;
  std::unique_ptr<Workspaces> workspaces_;  // activation buffers reused across calls
};

// Matcha's SinusoidalPosEmb(dim) of t (scale 1000), evaluated in float32 as torch does.
std::vector<float> timestep_embedding(float t, int64_t dim);

}  // namespace cosy
