// CosyVoice3's flow-matching vector field (cosyvoice.flow.DiT.dit.DiT, F5-TTS's DiT):
//   time: sinusoid (256, scale 1000) → Linear → SiLU → Linear: temb;
//   input: Linear([x | cond | mu | spks]) plus a causal convolutional position embedding
//     (two grouped k = 31 convs with Mish, each left-padded 30);
//   depth × DiTBlock: AdaLN-zero (shift, scale, gate for attention and for the MLP, from
//     SiLU(temb)), self-attention with biased projections and rotary embedding on head 0
//     only (x-transformers' adjacent pairs), a GELU-tanh MLP, gated residuals;
//   AdaLN-zero final norm (scale, shift) → Linear to the mel bins.
// Attention is full, or chunk-causal (static_chunk_size frames) when streaming. Weights
// only; one call evaluates a batch of independent sequences (the conditional and CFG halves
// of several streams).
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

struct DitInput {
  const Act* x = nullptr;     // [T, mel_dim]
  const Act* mu = nullptr;    // [T, mu_dim]; null: zeros (the CFG half)
  const Act* cond = nullptr;  // [T, mel_dim]; null: zeros
  const Act* spks = nullptr;  // [1, spk_dim]; null: zeros
  float t = 0;
  bool chunked = false;
  // Incremental streaming (chunked only): x's first row is frame state->committed; the
  // state supplies the attention keys/values and position-conv inputs of earlier frames,
  // and afterwards keeps those of the frames before `commit` (a chunk boundary: their
  // outputs are final).
  FlowEstimatorState* state = nullptr;
  int64_t commit = 0;
};

// Intermediate values of one input, for tests against the official code.
struct DitTrace {
  std::vector<float> temb;     // [dim]
  std::vector<float> xproj;    // [T, dim], the input projection
  std::vector<float> xemb;     // [T, dim], after the position embedding
  std::vector<float> block0;   // [T, dim], after the first block
  std::vector<float> normout;  // [T, dim], after the final norm
};

class DitEstimator {
 public:
  DitEstimator(Backend& backend, const DitConfig& config, const StateDict& weights,
               WeightFormat format);
  ~DitEstimator();
  DitEstimator(const DitEstimator&) = delete;
  DitEstimator& operator=(const DitEstimator&) = delete;

  // out[i] = v(x_i, t_i | mu_i, spks_i, cond_i), [T_i, out_channels]. `traces`, when given,
  // has one entry per input (null: not traced).
  void estimate(std::span<const DitInput> batch, Batch& out,
                std::span<DitTrace* const> traces = {}) const;

  // Multiply-adds ×2 of one pass over `frames` new frames after `past` cached ones,
  // chunk-causal over `chunk` frames or full attention (0).
  double flops(int64_t frames, int64_t past = 0, int64_t chunk = 0) const;
  const DitConfig& config() const { return config_; }

 private:
  struct Weights;
  Backend& backend_;
  DitConfig config_;
  std::unique_ptr<Weights> w_;
};

}  // namespace cosy
