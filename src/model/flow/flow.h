// CosyVoice2's flow (CausalMaskedDiffWithXvec.inference): speech tokens → 80-bin mel.
//   speaker x-vector → L2 normalise → spk_embed_affine_layer;
//   prompt tokens ++ tokens → FlowEncoder → mu; the prompt mel goes in as `cond`;
//   CausalConditionalCFM: z = the fixed noise table (torch.manual_seed(0);
//   randn(1, 80, 15000)) sliced to T frames, 10 Euler steps on the cosine schedule,
//   classifier-free guidance (rate 0.7) with the conditional and unconditional halves in
//   one estimator batch; the prompt frames are cut from the result.
// FlowModel holds weights and the noise table (shared, read-only). One call runs any number
// of independent requests, each Euler step as one batched estimator call.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"
#include "model/flow/flow_encoder.h"
#include "model/flow/flow_estimator.h"
#include "model/flow/flow_state.h"
#include "model/flow/uncond_first_pass.h"

namespace cosy {

// Intermediates a test can ask for (channels-last).
struct FlowTrace {
  FlowEncoderTrace encoder;
  std::vector<float> mu;        // [T, bins]
  std::vector<float> spks;      // [bins]
  std::vector<float> cond;      // [T, bins]
  std::vector<float> noise;     // [T, bins]
  std::vector<float> est0_out;  // [2, T, bins]: step 0, conditional then CFG half
  std::vector<float> est_t;     // t at every Euler step
  std::vector<float> mel_full;  // [T, bins] including the prompt frames
};

struct FlowRequest {
  std::span<const int32_t> prompt_tokens;
  // Speech tokens; when !finalize the last pre_lookahead_len of them are look-ahead context
  // only (they produce no frames).
  std::span<const int32_t> tokens;
  std::span<const float> prompt_feat;  // [2 * prompt tokens, bins]
  std::span<const float> embedding;    // speaker x-vector [spk_embed_dim]
  bool streaming = false;              // chunk-causal attention
  bool finalize = true;                // no look-ahead context left
  std::vector<float>* mel = nullptr;   // out: [frames, bins], see first_frame
  FlowTrace* trace = nullptr;
  // Incremental streaming (streaming only): the stream's state; frames already committed
  // are not recomputed, so mel starts later. Null: the official full computation.
  FlowStreamState* state = nullptr;
  // Out (optional): the frame, counted from the first non-prompt frame, where mel starts
  // (0 without a state).
  int64_t* first_frame = nullptr;
  // With a state: where the CFG half's first Euler pass over this chunk is looked up, and
  // stored when it is not there (see UncondFirstPassCache). Null: always computed.
  UncondFirstPassCache* uncond_cache = nullptr;
};

// The CFM's fixed initial noise (CausalConditionalCFM.rand_noise: set_all_random_seed(0);
// torch.randn([1, 80, 15000])), channels-last [15000, 80]; a call on T frames (prompt
// included) reads the first T rows. CosyVoice2 and CosyVoice3 share it.
ConstArray<float> cfm_noise_table(Backend& backend);

class FlowModel {
 public:
  FlowModel(Backend& backend, const FlowConfig& config, const StateDict& weights,
            WeightFormat format = WeightFormat::F32);
  ~FlowModel();
  FlowModel(const FlowModel&) = delete;
  FlowModel& operator=(const FlowModel&) = delete;

  const FlowConfig& config() const { return config_; }
  int64_t mel_bins() const { return config_.output_size; }
  // Every request is checked before anything runs; a bad one is an Error naming it.
  void infer(std::span<FlowRequest> batch) const;
  // An Error when a prompt does not fit: mel frames per token, mel bins, embedding size,
  // non-finite values. infer() and prompt_state() run it; callers may check a voice early.
  void check_prompt(std::span<const int32_t> prompt_tokens, std::span<const float> prompt_feat,
                    std::span<const float> embedding) const;

  // The streaming state a stream has once the complete chunks of its prompt are committed,
  // computed from the prompt alone: every chunk whose look-ahead stays inside the prompt
  // depends on nothing the request adds, so a voice's streams can all start from it
  // instead of recomputing the prompt's frames. Committed rows 0 when the prompt is
  // shorter than one chunk plus the look-ahead. Its attention rows are shared: copies of
  // it (one per stream) point at them rather than copy them.
  // `half_kv`: for streams with FlowStreamOptions::half_state.
  // A copy of a stream state for another stream (a voice's prompt state for a new stream).
  FlowStreamState copy_state(const FlowStreamState& state) const;
  FlowStreamState prompt_state(std::span<const int32_t> prompt_tokens,
                               std::span<const float> prompt_feat, std::span<const float> embedding,
                               bool half_kv = false) const;

  // The Euler time points t_0..t_n of the cosine schedule, in float32 as torch computes them.
  static std::vector<float> cosine_t_span(int64_t steps);
  // Longest sequence (prompt included) the noise table covers, in mel frames.
  int64_t max_frames() const;

  const FlowEncoder& encoder() const { return encoder_; }
  const FlowEstimator& estimator() const { return estimator_; }
  double flops(int64_t tokens) const;  // one non-streaming call on `tokens` tokens
  // One call's work on the frames of `tokens` tokens (prompt included) after the first
  // `past` (cached, not computed again), chunk-causal when `streaming`.
  double flops(int64_t tokens, int64_t past, bool streaming) const;

 private:
  void check(const FlowRequest& r) const;

  Backend& backend_;
  FlowConfig config_;
  FlowEncoder encoder_;
  FlowEstimator estimator_;
  LinearLayer spk_affine_;
  ConstArray<float> noise_;  // [max_frames, bins]: torch's [bins, max_frames] draw, transposed
  static constexpr int64_t kSteps = 10;
};

}  // namespace cosy
