#include "model/lm/qwen2.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

Qwen2Backbone::Qwen2Backbone(Backend& backend, const QwenConfig& config, const StateDict& weights,
                             const std::string& prefix, WeightFormat format)
    : backend_(backend), config_(config) {
  config_.validate();
  const WeightLoader wl(backend, weights, format);
  const int64_t h = config_.hidden_size, hd = config_.head_dim();
  const int64_t q_out = config_.num_attention_heads * hd, kv_out = config_.num_key_value_heads * hd;
  const int64_t inter = config_.intermediate_size;
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    const std::string p = prefix + "layers." + std::to_string(i) + ".";
    Layer l;
    l.input_norm = wl.constants(p + "input_layernorm.weight");
    l.post_norm = wl.constants(p + "post_attention_layernorm.weight");
    const std::string a = p + "self_attn.";
    l.qkv.w =
        wl.stacked_linear({a + "q_proj", a + "k_proj", a + "v_proj"}, {q_out, kv_out, kv_out}, h);
    std::vector<float> qkv_bias;
    for (const char* name : {"q_proj", "k_proj", "v_proj"}) {
      const auto b = wl.floats(a + name + ".bias");
      qkv_bias.insert(qkv_bias.end(), b.begin(), b.end());
    }
    l.qkv.b = ConstArray<float>::upload(backend, std::move(qkv_bias));
    l.qkv.in = h;
    l.qkv.out = q_out + 2 * kv_out;
    l.o = load_linear(wl, a + "o_proj", h, q_out, false);
    l.gate_up.w = wl.stacked_linear({p + "mlp.gate_proj", p + "mlp.up_proj"}, {inter, inter}, h);
    l.gate_up.in = h;
    l.gate_up.out = 2 * inter;
    l.down = load_linear(wl, p + "mlp.down_proj", h, inter, false);
    if (static_cast<int64_t>(l.qkv.b.size()) != l.qkv.out ||
        static_cast<int64_t>(l.input_norm.size()) != h ||
        static_cast<int64_t>(l.post_norm.size()) != h) {
      fail(weights.label, ": layer ", i, " norms or q/k/v biases do not match hidden ", h);
    }
    layers_.push_back(std::move(l));
  }
  final_norm_ = wl.constants(prefix + "norm.weight");
  if (static_cast<int64_t>(final_norm_.size()) != h)
    fail(weights.label, ": final norm has ", final_norm_.size(), " values, expected ", h);
}

KvPoolGeometry Qwen2Backbone::kv_geometry(int64_t blocks, int64_t block_size) const {
  return {config_.num_hidden_layers, config_.num_key_value_heads, config_.head_dim(), block_size,
          blocks};
}

void Qwen2Backbone::forward(Exec& e, PagedKvPool& pool, std::span<const Qwen2Chunk> chunks,
                            Qwen2Workspace& ws) const {
  const int64_t h = config_.hidden_size, hd = config_.head_dim();
  const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
  const int64_t qkv_w = (heads + 2 * kv_heads) * hd, inter = config_.intermediate_size;

  // Check everything, then reserve, before any compute.
  int64_t rows = 0;
  ws.row0.clear();
  ws.reservations.clear();
  for (const Qwen2Chunk& c : chunks) {
    if (c.rows <= 0 || c.inputs == nullptr) fail("qwen2: a sequence has no new rows");
    if (!pool.contains(c.seq)) fail("qwen2: unknown kv sequence ", c.seq);
    if (pool.length(c.seq) + c.rows > config_.max_position_embeddings) {
      fail("qwen2: ", pool.length(c.seq) + c.rows, " positions exceed the model's context of ",
           config_.max_position_embeddings);
    }
    ws.row0.push_back(rows);
    ws.reservations.push_back({c.seq, c.rows});
    rows += c.rows;
  }
  if (rows == 0) return;
  pool.reserve(ws.reservations);

  ws.x.resize(e.b, static_cast<size_t>(rows * h));
  ws.h.resize(e.b, ws.x.size());
  ws.attn.resize(e.b, static_cast<size_t>(rows * heads * hd));
  ws.qkv.resize(e.b, static_cast<size_t>(rows * qkv_w));
  ws.gate_up.resize(e.b, static_cast<size_t>(rows * 2 * inter));
  ws.act.resize(e.b, static_cast<size_t>(rows * inter));
  ws.positions.resize(static_cast<size_t>(rows));
  ws.seqs.resize(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Qwen2Chunk& c = chunks[i];
    const int64_t r0 = ws.row0[i], past = pool.length(c.seq);
    e.b.copy(e.s, ws.x.data() + r0 * h, c.inputs, static_cast<size_t>(c.rows * h) * sizeof(float));
    for (int64_t r = 0; r < c.rows; ++r)
      ws.positions[static_cast<size_t>(r0 + r)] = static_cast<int32_t>(past + r);
    AttentionSeq& s = ws.seqs[i];
    s = {};
    s.q = ws.qkv.data() + r0 * qkv_w;
    s.q_len = c.rows;
    s.q_pos0 = past;
    s.block_table = pool.block_table(c.seq);
    s.kv_len = past + c.rows;
    s.out = ws.attn.data() + r0 * heads * hd;
  }

  AttentionArgs att;
  att.num_heads = heads;
  att.num_kv_heads = kv_heads;
  att.head_dim = hd;
  att.ld_q = qkv_w;
  att.mask = MaskKind::Causal;
  att.block_size = pool.geometry().block_size;
  const auto eps = static_cast<float>(config_.rms_norm_eps);
  const auto theta = static_cast<float>(config_.rope_theta);
  const Activation silu{ActivationKind::Silu};

  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    const auto layer = static_cast<int64_t>(li);
    e.k.rms_norm(e.s, ws.x.data(), ws.h.data(), rows, h, l.input_norm.data(), eps);
    l.qkv.run(e, ws.h.data(), ws.qkv.data(), rows);
    e.k.rope(e.s, ws.qkv.data(), rows, heads, hd, qkv_w, ws.positions.data(), theta,
             RopePairs::Halves);
    e.k.rope(e.s, ws.qkv.data() + heads * hd, rows, kv_heads, hd, qkv_w, ws.positions.data(), theta,
             RopePairs::Halves);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const float* k = ws.qkv.data() + ws.row0[i] * qkv_w + heads * hd;
      pool.write(e.s, chunks[i].seq, layer, ws.seqs[i].q_pos0, k, k + kv_heads * hd, chunks[i].rows,
                 qkv_w);
    }
    att.k_pool = pool.k_slab(layer);
    att.v_pool = pool.v_slab(layer);
    e.k.attention(e.s, ws.seqs, att);
    l.o.run(e, ws.attn.data(), ws.x.data(), rows, true);

    e.k.rms_norm(e.s, ws.x.data(), ws.h.data(), rows, h, l.post_norm.data(), eps);
    l.gate_up.run(e, ws.h.data(), ws.gate_up.data(), rows);
    e.k.gated_activation(e.s, ws.gate_up.data(), ws.act.data(), rows, inter, silu);
    l.down.run(e, ws.act.data(), ws.x.data(), rows, true);
  }

  for (size_t i = 0; i < chunks.size(); ++i) {
    const Qwen2Chunk& c = chunks[i];
    const float* src = ws.x.data() + ws.row0[i] * h;
    if (c.all_hidden != nullptr)
      e.k.rms_norm(e.s, src, c.all_hidden, c.rows, h, final_norm_.data(), eps);
    if (c.last_hidden != nullptr)
      e.k.rms_norm(e.s, src + (c.rows - 1) * h, c.last_hidden, 1, h, final_norm_.data(), eps);
  }
  for (const Qwen2Chunk& c : chunks) pool.commit(c.seq, c.rows);
}

double Qwen2Backbone::linear_flops(int64_t rows) const {
  double f = 0;
  for (const Layer& l : layers_)
    f += l.qkv.flops(rows) + l.o.flops(rows) + l.gate_up.flops(rows) + l.down.flops(rows);
  return f;
}

size_t Qwen2Backbone::weight_bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_)
    b += l.qkv.w->bytes() + l.o.w->bytes() + l.gate_up.w->bytes() + l.down.w->bytes();
  return b;
}

}  // namespace cosy
