// CosyVoice3's flow (cosyvoice.flow.flow.CausalMaskedDiffWithDiT): speech tokens (prompt
// first) → input_embedding → PreLookaheadLayer (conv k = 4 over the tokens and 3 look-ahead
// frames, leaky ReLU, causal conv k = 3, residual) → each frame twice: mu, straight into the
// DiT (no conformer, no projection). Then CosyVoice2's CFM: the fixed noise, 10 Euler steps
// on the cosine schedule, classifier-free guidance as one batch of 2.
// Weights only, shared by every stream; one call runs a batch of requests.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "core/device_array.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"
#include "model/dit/dit_estimator.h"
#include "model/layers.h"

namespace cosy {

struct DitFlowTrace {
  std::vector<float> la_in;       // [T, bins]: the token embeddings (look-ahead excluded)
  std::vector<float> la_context;  // [3, bins] when the call has look-ahead tokens
  std::vector<float> la_out;      // [T, bins]
  std::vector<float> mu;          // [2T, bins]
  std::vector<float> spks;        // [bins]
  std::vector<float> cond;        // [2T, bins]
  std::vector<float> noise;       // [2T, bins]
  std::vector<float> est0_out;    // [2, 2T, bins]: step 0, conditional then CFG half
  DitTrace est0[2];               // step 0's internals, conditional then CFG half
  std::vector<float> est_t;       // t at every Euler step
  std::vector<float> mel_full;    // [2T, bins] including the prompt frames
};

struct DitFlowRequest {
  std::span<const int32_t> prompt_tokens;
  // Speech tokens; when !finalize the last pre_lookahead_len of them are look-ahead context
  // only (they produce no frames).
  std::span<const int32_t> tokens;
  std::span<const float> prompt_feat;  // [2 * prompt tokens, bins]
  std::span<const float> embedding;    // speaker x-vector [spk_embed_dim]
  bool streaming = false;              // chunk-causal attention
  bool finalize = true;                // no look-ahead context left
  std::vector<float>* mel = nullptr;   // out: [frames, bins], the prompt's frames removed
  DitFlowTrace* trace = nullptr;
  // Incremental streaming (chunk-masked calls): the stream's state. Frames already
  // committed are not recomputed, so mel starts later (first_frame); the output equals the
  // full computation's. Null: the official full computation.
  FlowStreamState* state = nullptr;
  int64_t* first_frame = nullptr;  // out (optional): mel's first frame after the prompt's
};

class DitFlowModel {
 public:
  DitFlowModel(Backend& backend, const FlowConfig& config, const StateDict& weights,
               WeightFormat format = WeightFormat::F32);
  ~DitFlowModel();

  void infer(std::span<DitFlowRequest> batch) const;
  // The work of a call over `tokens` speech tokens (prompt included), `past` of them served
  // from a stream's state, chunk masks or full attention: the DiT's, ×10 Euler steps ×2
  // CFG halves (the front end is a rounding error beside it).
  double flops(int64_t tokens, int64_t past = 0, bool streaming = false) const;

  // The state an incremental stream of this prompt starts from: the prompt's complete
  // chunks (those its own tokens decide), for every Euler step and CFG half, computed once.
  // Its rows are shared: copy_state gives each stream its own state reading them. The
  // stream's output is the same as computing them itself.
  FlowStreamState prompt_state(std::span<const int32_t> prompt_tokens,
                               std::span<const float> prompt_feat, std::span<const float> embedding,
                               bool half_kv) const;
  FlowStreamState copy_state(const FlowStreamState& state) const;

  const FlowConfig& config() const { return config_; }
  const DitEstimator& estimator() const { return estimator_; }
  int64_t mel_bins() const { return config_.output_size; }

 private:
  void check(const DitFlowRequest& r) const;
  Backend& backend_;
  FlowConfig config_;
  DitEstimator estimator_;
  ConstArray<float> embedding_;  // input_embedding [vocab, input_size]
  ConvLayer la_conv1_, la_conv2_;
  LinearLayer spk_affine_;
  ConstArray<float> noise_;
};

}  // namespace cosy
