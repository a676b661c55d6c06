// CosyVoice2's flow front half: speech tokens → mu, the 80-bin mel prior the flow-matching
// decoder starts from. It reproduces CausalMaskedDiffWithXvec's token embedding and
// encoder_proj around UpsampleConformerEncoder:
//   embedding → linear + LayerNorm + ×√d → PreLookaheadLayer (3 look-ahead tokens) →
//   conformer blocks (espnet relative positions, 25-token chunk masks when streaming) →
//   ×2 nearest upsampling + causal conv → linear + LayerNorm + ×√d → 4 conformer blocks
//   (50-frame chunks) → LayerNorm → encoder_proj.
// FlowEncoder holds weights only (shared, read-only); one call encodes a batch of
// independent sequences.
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

struct FlowEncoderInput {
  std::span<const int32_t> tokens;   // prompt tokens then speech tokens, look-ahead excluded
  std::span<const int32_t> context;  // look-ahead tokens after `tokens` (empty: zeros, as at
                                     // the end of an utterance)
  bool chunked = false;              // chunk masks (streaming) or full attention
  // Incremental streaming (chunked only): rows before state->committed are not recomputed;
  // afterwards the state keeps every complete chunk of this call.
  FlowEncoderState* state = nullptr;
};

// Intermediates a test can ask for.
struct FlowEncoderTrace {
  std::vector<float> embedded;  // [T, input_size] token embeddings
  std::vector<float> out;       // [2T, output_size] after after_norm, before encoder_proj
};

class FlowEncoder {
 public:
  FlowEncoder(Backend& backend, const FlowConfig& config, const StateDict& weights,
              WeightFormat format);
  ~FlowEncoder();
  FlowEncoder(const FlowEncoder&) = delete;
  FlowEncoder& operator=(const FlowEncoder&) = delete;

  // mu[i] = [2 (T_i - start_i), mel bins]: the frames from twice the state's committed row
  // (0 without a state) to the end. Token ids must lie in [0, vocab_size) and the context
  // must be empty or exactly pre_lookahead_len tokens.
  void encode(std::span<const FlowEncoderInput> batch, Batch& mu,
              std::span<FlowEncoderTrace*> traces = {}) const;

  double flops(int64_t tokens) const;

 private:
  struct Weights;
  void check(const FlowEncoderInput& in) const;

  Backend& backend_;
  FlowConfig config_;
  std::unique_ptr<Weights> w_;
};

// espnet's relative positional encoding of distances -(n-1) .. n-1, row d + n - 1 holding
// distance d: [sin(d·f_k), cos(d·f_k)] interleaved, evaluated in float32 as torch does.
std::vector<float> relative_position_table(int64_t n, int64_t dim);

}  // namespace cosy
