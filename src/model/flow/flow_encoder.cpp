#include "model/flow/flow_encoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "model/stream_ops.h"

namespace cosy {

namespace {

// espnet/wenet ConformerEncoderLayer as CosyVoice2 configures it: pre-norm, relative-position
// self-attention, a SiLU feed-forward, no convolution module, no macaron feed-forward.
struct ConformerLayer {
  LayerNormLayer norm_mha, norm_ff;
  LinearLayer q, k, v, out, pos;
  ConstArray<float> bias_u, bias_v;  // [heads, d_k]
  LinearLayer w1, w2;
};

ConformerLayer load_conformer(const WeightLoader& wl, const std::string& p,
                              const ConformerConfig& c) {
  const int64_t d = c.output_size;
  const std::string a = p + ".self_attn";
  ConformerLayer l;
  l.norm_mha = load_layer_norm(wl, p + ".norm_mha");
  l.norm_ff = load_layer_norm(wl, p + ".norm_ff");
  l.q = load_linear(wl, a + ".linear_q", d, d);
  l.k = load_linear(wl, a + ".linear_k", d, d);
  l.v = load_linear(wl, a + ".linear_v", d, d);
  l.out = load_linear(wl, a + ".linear_out", d, d);
  l.pos = load_linear(wl, a + ".linear_pos", d, d, /*bias=*/false);
  l.bias_u = wl.constants(a + ".pos_bias_u");
  l.bias_v = wl.constants(a + ".pos_bias_v");
  l.w1 = load_linear(wl, p + ".feed_forward.w_1", c.linear_units, d);
  l.w2 = load_linear(wl, p + ".feed_forward.w_2", d, c.linear_units);
  return l;
}

// LinearNoSubsampling + EspnetRelPositionalEncoding's scaling: LayerNorm(x W^T + b) · √d.
struct InputLayer {
  LinearLayer linear;
  LayerNormLayer norm;
  float xscale = 1;
  void run(Exec& e, const Batch& x, Batch& y) const {
    linear.run(e, x, y);
    norm.run(e, y, y);
    for (auto& a : y) e.k.axpby(e.s, nullptr, a.ptr(), static_cast<int64_t>(a.size()), 0, xscale);
  }
};

InputLayer load_input_layer(const WeightLoader& wl, const std::string& p, int64_t out, int64_t in) {
  return {load_linear(wl, p + ".out.0", out, in), load_layer_norm(wl, p + ".out.1"),
          static_cast<float>(std::sqrt(static_cast<double>(out)))};
}

void add_head_bias(Exec& e, const Act& q, const ConstArray<float>& bias, Act& out) {
  if (static_cast<int64_t>(bias.size()) != q.ch)
    fail("conformer: position bias has ", bias.size(), " values, expected ", q.ch);
  out.resize(e, q.rows, q.ch);
  e.k.add_row(e.s, q.ptr(), bias.data(), out.ptr(), q.rows, q.ch);
}

}  // namespace

std::vector<float> relative_position_table(int64_t n, int64_t dim) {
  std::vector<float> pe(static_cast<size_t>((2 * n - 1) * dim));
  const auto step = static_cast<float>(-(std::log(10000.0) / static_cast<double>(dim)));
  for (int64_t k = 0; k < dim; k += 2) {
    const float freq = std::exp(static_cast<float>(k) * step);
    for (int64_t d = -(n - 1); d <= n - 1; ++d) {
      const float arg = static_cast<float>(d) * freq;
      float* row = pe.data() + (d + n - 1) * dim;
      row[k] = static_cast<float>(std::sin(static_cast<double>(arg)));
      if (k + 1 < dim) row[k + 1] = static_cast<float>(std::cos(static_cast<double>(arg)));
    }
  }
  return pe;
}

struct FlowEncoder::Weights {
  ConstArray<float> embedding;  // [vocab, input_size]
  InputLayer embed, up_embed;
  ConvLayer lookahead1, lookahead2, up_conv;
  std::vector<ConformerLayer> blocks, up_blocks;
  LayerNormLayer after_norm;
  LinearLayer proj;
};

FlowEncoder::FlowEncoder(Backend& backend, const FlowConfig& config, const StateDict& sd,
                         WeightFormat format)
    : backend_(backend), config_(config), w_(std::make_unique<Weights>()) {
  config_.validate();
  const ConformerConfig& c = config_.encoder;
  const int64_t d = c.output_size, la = config_.pre_lookahead_len;
  const WeightLoader wl(backend, sd, format);
  Weights& w = *w_;
  w.embedding = wl.constants("input_embedding.weight");
  if (static_cast<int64_t>(w.embedding.size()) != config_.vocab_size * config_.input_size)
    fail(sd.label, ": input_embedding has ", w.embedding.size(), " values, expected ",
         config_.vocab_size, " x ", config_.input_size);
  w.embed = load_input_layer(wl, "encoder.embed", d, c.input_size);
  // PreLookaheadLayer: conv1 sees each token and the `la` after it (the caller appends
  // them, or zeros); conv2 is causal.
  w.lookahead1 = load_conv(wl, "encoder.pre_lookahead_layer.conv1", d, d, la + 1, 0, 0);
  w.lookahead2 = load_conv(wl, "encoder.pre_lookahead_layer.conv2", d, d, 3, 0, 0);
  for (int64_t i = 0; i < c.num_blocks; ++i)
    w.blocks.push_back(load_conformer(wl, "encoder.encoders." + std::to_string(i), c));
  const int64_t s = c.upsample_stride;
  w.up_conv = load_conv(wl, "encoder.up_layer.conv", d, d, 2 * s + 1, 0, 0);  // causal_conv pads
  w.up_embed = load_input_layer(wl, "encoder.up_embed", d, d);
  for (int64_t i = 0; i < c.num_up_blocks; ++i)
    w.up_blocks.push_back(load_conformer(wl, "encoder.up_encoders." + std::to_string(i), c));
  w.after_norm = load_layer_norm(wl, "encoder.after_norm");
  w.proj = load_linear(wl, "encoder_proj", config_.output_size, d);
}

FlowEncoder::~FlowEncoder() = default;

void FlowEncoder::check(const FlowEncoderInput& in) const {
  if (in.tokens.empty()) fail("flow encoder: no tokens");
  if (!in.context.empty() && static_cast<int64_t>(in.context.size()) != config_.pre_lookahead_len) {
    fail("flow encoder: ", in.context.size(), " look-ahead tokens given, expected 0 or ",
         config_.pre_lookahead_len);
  }
  for (auto span : {in.tokens, in.context}) {
    for (const int32_t t : span) {
      if (t < 0 || t >= config_.vocab_size) {
        fail("flow encoder: speech token ", t, " is out of range [0, ", config_.vocab_size, ")");
      }
    }
  }
}

namespace {

// Where each sequence of a call starts and what it keeps.
struct Rows {
  int64_t start = 0;   // first new token row
  int64_t end = 0;     // token rows after this call
  int64_t commit = 0;  // token rows the state keeps afterwards
  FlowEncoderState* state = nullptr;
  bool chunked = false;
};

// One conformer block over the new rows of every sequence; `pe` is the projected relative
// table input (distances up to the longest sequence), `rel_zero` its distance-0 row;
// `scale` maps token rows to this block's rows (1 or the upsampling stride).
void run_conformer(Exec& e, const ConformerLayer& l, const ConformerConfig& c, Batch& x,
                   const Batch& pe, int64_t rel_zero, int64_t chunk, const std::vector<Rows>& rows,
                   size_t kv_index, int64_t scale) {
  const size_t n = x.size();
  const int64_t heads = c.attention_heads, dk = c.output_size / heads;
  Batch h, q, k, v, qu, qv, att(n), rel;
  l.norm_mha.run(e, x, h);
  l.q.run(e, h, q);
  l.k.run(e, h, k);
  l.v.run(e, h, v);
  l.pos.run(e, pe, rel);
  qu.resize(n);
  qv.resize(n);
  std::vector<SelfAttentionIo> io(n);
  for (size_t i = 0; i < n; ++i) {
    add_head_bias(e, q[i], l.bias_u, qu[i]);
    add_head_bias(e, q[i], l.bias_v, qv[i]);
    FlowEncoderState* st = rows[i].state;
    io[i] = {&qu[i],
             &qv[i],
             &k[i],
             &v[i],
             &att[i],
             st != nullptr ? &st->kv[kv_index] : nullptr,
             rows[i].start * scale,
             rows[i].commit * scale,
             rows[i].chunked};
  }
  AttentionArgs a;
  a.num_heads = a.num_kv_heads = heads;
  a.head_dim = dk;
  a.chunk = chunk;
  a.rel_table = rel[0].ptr();
  a.rel_zero = rel_zero;
  self_attention(e, io, a);
  l.out.run(e, att, x, /*accumulate=*/true);
  l.norm_ff.run(e, x, h);
  l.w1.run(e, h, q);
  activate(e, q, {ActivationKind::Silu});
  l.w2.run(e, q, x, /*accumulate=*/true);
}

Batch position_table(Exec& e, int64_t n, int64_t d) {
  Batch pe(1);
  upload(e, relative_position_table(n, d), 2 * n - 1, d, pe[0]);
  return pe;
}

}  // namespace

void FlowEncoder::encode(std::span<const FlowEncoderInput> batch, Batch& mu,
                         std::span<FlowEncoderTrace*> traces) const {
  for (const auto& in : batch) check(in);
  if (!traces.empty() && traces.size() != batch.size()) fail("flow encoder: traces/batch mismatch");
  mu.clear();
  if (batch.empty()) return;
  const ConformerConfig& c = config_.encoder;
  const Weights& w = *w_;
  const size_t n = batch.size();
  const int64_t din = config_.input_size, d = c.output_size, la = config_.pre_lookahead_len;
  const int64_t s = c.upsample_stride, chunk = c.static_chunk_size;
  const auto kv_layers = static_cast<size_t>(c.num_blocks + c.num_up_blocks);
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);

  std::vector<Rows> rows(n);
  int64_t t_max = 0;
  for (size_t i = 0; i < n; ++i) {
    Rows& r = rows[i];
    r.state = batch[i].state;
    r.chunked = batch[i].chunked && chunk > 0;
    r.end = static_cast<int64_t>(batch[i].tokens.size());
    if (r.state != nullptr) {
      if (!r.chunked) fail("flow encoder: incremental state needs chunk masks (streaming)");
      if (r.state->kv.empty()) r.state->kv.resize(kv_layers);
      r.start = r.state->committed;
      if (r.start >= r.end)
        fail("flow encoder: no new tokens after the ", r.start, " already committed");
      r.commit = r.end / chunk * chunk;
    }
    t_max = std::max(t_max, r.end);
  }

  // Embeddings from two rows before the first new one (the causal conv2 reads them), the
  // look-ahead context (or zeros) appended for conv1.
  Batch emb(n), x_lo, padded(n), y1, x(n);
  std::vector<int64_t> lo(n);
  for (size_t i = 0; i < n; ++i) {
    lo[i] = std::max<int64_t>(0, rows[i].start - 2);
    const auto ids = batch[i].tokens.subspan(static_cast<size_t>(lo[i]));
    std::vector<int32_t> all(ids.begin(), ids.end());
    all.insert(all.end(), batch[i].context.begin(), batch[i].context.end());
    emb[i].resize(e, static_cast<int64_t>(all.size()), din);
    e.k.gather_rows(e.s, w.embedding.data(), din, all.data(), static_cast<int64_t>(all.size()),
                    emb[i].ptr());
    if (!traces.empty() && traces[i] != nullptr) {
      const int64_t skip = rows[i].start - lo[i];
      const std::vector<float> host = download(e, emb[i]);
      traces[i]->embedded.assign(host.begin() + skip * din,
                                 host.begin() + static_cast<int64_t>(ids.size()) * din);
    }
  }
  w.embed.run(e, emb, x_lo);
  for (size_t i = 0; i < n; ++i) {
    const int64_t body = rows[i].end - lo[i];
    padded[i].resize(e, body + la, d);
    e.k.pad_rows(e.s, x_lo[i].ptr(), x_lo[i].rows, d, padded[i].ptr(), 0,
                 padded[i].rows - x_lo[i].rows, PadMode::Zero);
    // The residual: the embedded new rows.
    x[i].resize(e, rows[i].end - rows[i].start, d);
    e.k.copy_2d(e.s, x_lo[i].row(rows[i].start - lo[i]), d, x[i].ptr(), d, x[i].rows, d);
  }
  w.lookahead1.run(e, padded, y1);
  {
    // conv2 is causal over conv1's output: two zero rows at the very start, else the two
    // recomputed rows before the first new one.
    Batch y1p(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t zeros = 2 - (rows[i].start - lo[i]);
      y1p[i].resize(e, zeros + y1[i].rows, d);
      e.k.pad_rows(e.s, y1[i].ptr(), y1[i].rows, d, y1p[i].ptr(), zeros, 0, PadMode::Zero);
    }
    w.lookahead2.run(e, y1p, x, {ActivationKind::LeakyRelu, 0.01f}, /*accumulate=*/true);
  }

  {
    const Batch pe = position_table(e, t_max, d);
    for (size_t l = 0; l < w.blocks.size(); ++l)
      run_conformer(e, w.blocks[l], c, x, pe, t_max - 1, chunk, rows, l, 1);
  }

  // ×stride nearest upsampling into the causal conv, whose left context is the stream's tail.
  Batch up(n), y(n), conv_in;
  std::vector<CausalConvIo> conv_io(n);
  for (size_t i = 0; i < n; ++i) {
    up[i].resize(e, x[i].rows * s, d);
    // Row r of the output is row r / s of the input: s interleaved copies.
    for (int64_t phase = 0; phase < s; ++phase)
      e.k.copy_2d(e.s, x[i].ptr(), d, up[i].row(phase), s * d, x[i].rows, d);
    FlowEncoderState* st = rows[i].state;
    conv_io[i] = {&up[i], &y[i], st != nullptr ? &st->up_tail : nullptr, rows[i].start * s,
                  st != nullptr ? rows[i].commit * s : -1};
  }
  causal_conv(e, w.up_conv, conv_io, conv_in);
  w.up_embed.run(e, y, x);
  {
    const Batch pe = position_table(e, t_max * s, d);
    for (size_t l = 0; l < w.up_blocks.size(); ++l) {
      run_conformer(e, w.up_blocks[l], c, x, pe, t_max * s - 1, chunk * s, rows,
                    w.blocks.size() + l, s);
    }
  }
  w.after_norm.run(e, x, x);
  for (size_t i = 0; i < n; ++i) {
    if (!traces.empty() && traces[i] != nullptr) traces[i]->out = download(e, x[i]);
    if (rows[i].state != nullptr) rows[i].state->committed = rows[i].commit;
  }
  w.proj.run(e, x, mu);
  stream->synchronize();
}

double FlowEncoder::flops(int64_t tokens) const {
  const ConformerConfig& c = config_.encoder;
  const double d = static_cast<double>(c.output_size);
  auto layer = [&](double t) {
    const double linears = 2.0 * t * d * d * 4 + 2.0 * (2 * t - 1) * d * d +
                           2.0 * 2 * t * d * static_cast<double>(c.linear_units);
    const double attn = 2.0 * 3 * t * t * d;  // q·k, q·rel, p·v
    return linears + attn;
  };
  const double t = static_cast<double>(tokens), u = t * static_cast<double>(c.upsample_stride);
  double total = 2.0 * t * d * static_cast<double>(config_.input_size);
  total += 2.0 * t * d * d * static_cast<double>(config_.pre_lookahead_len + 1 + 3);
  total += static_cast<double>(c.num_blocks) * layer(t);
  total += 2.0 * u * d * d * static_cast<double>(2 * c.upsample_stride + 1) + 2.0 * u * d * d;
  total += static_cast<double>(c.num_up_blocks) * layer(u);
  total += 2.0 * u * d * static_cast<double>(config_.output_size);
  return total;
}

}  // namespace cosy
