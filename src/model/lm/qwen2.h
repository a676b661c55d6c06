// The Qwen2 decoder stack (CosyVoice-BlankEN) as CosyVoice2's speech LM runs it: input
// embeddings in, final-normed hidden states out. Qwen's 151 936-way text head is never
// computed. Per layer: RMSNorm → fused q|k|v projection (with biases) → rotary embedding
// → grouped-query causal attention over the paged KV pool → o_proj (+ residual) →
// RMSNorm → fused gate|up → SwiGLU → down (+ residual).
//
// One forward runs any mix of sequences at once: new streams' prompts (prefill) and other
// streams' single decode rows, each at its own length, share every GEMM (continuous
// batching). Weights are shared and read-only; per-stream state is the KV pool sequence.
#pragma once

#include <span>
#include <vector>

#include "core/kv_pool.h"
#include "io/torch_checkpoint.h"
#include "model/config.h"
#include "model/layers.h"

namespace cosy {

// One sequence's part of a batched forward.
struct Qwen2Chunk {
  PagedKvPool::SeqId seq = 0;
  // All three in backend memory.
  const float* inputs = nullptr;  // [rows, hidden]: the new input embeddings
  int64_t rows = 0;
  float* last_hidden = nullptr;  // out [hidden]: final-normed state of the last new row
  float* all_hidden = nullptr;   // optional out [rows, hidden]: every new row's state
};

// Scratch a forward reuses from call to call (no allocation once it has grown): activations
// in backend memory, launch arguments (positions, sequence lists) on the host.
struct Qwen2Workspace {
  DeviceArray<float> x, h, qkv, attn, gate_up, act;
  std::vector<int32_t> positions;
  std::vector<AttentionSeq> seqs;
  std::vector<int64_t> row0;
  std::vector<PagedKvPool::Request> reservations;
};

class Qwen2Backbone {
 public:
  // `prefix` names the Qwen2Model inside the state dict ("llm.model.model.").
  Qwen2Backbone(Backend& backend, const QwenConfig& config, const StateDict& weights,
                const std::string& prefix, WeightFormat format);

  const QwenConfig& config() const { return config_; }
  int64_t hidden() const { return config_.hidden_size; }
  // A pool laid out for this stack's keys and values.
  KvPoolGeometry kv_geometry(int64_t blocks, int64_t block_size = 16) const;

  // Runs every chunk's new rows through the stack, appending their keys and values to the
  // pool. Every chunk is checked and the pool's room reserved before anything runs; on an
  // error no sequence changes length.
  void forward(Exec& e, PagedKvPool& pool, std::span<const Qwen2Chunk> chunks,
               Qwen2Workspace& ws) const;

  // Multiply-adds ×2 of one forward over `rows` new rows (attention excluded).
  double linear_flops(int64_t rows) const;
  // Bytes of prepared weights one step streams (every linear, once).
  size_t weight_bytes() const;

 private:
  struct Layer {
    ConstArray<float> input_norm, post_norm;
    LinearLayer qkv, o, gate_up, down;
  };

  Backend& backend_;
  QwenConfig config_;
  std::vector<Layer> layers_;
  ConstArray<float> final_norm_;
};

}  // namespace cosy
