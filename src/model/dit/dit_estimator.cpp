#include "model/dit/dit_estimator.h"

#include <cmath>
#include <numeric>
#include <string>

#include "core/error.h"
#include "model/flow/flow_estimator.h"  // timestep_embedding: the same sinusoid as Matcha's
#include "model/stream_ops.h"

namespace cosy {
namespace {

constexpr float kNormEps = 1e-6f;       // AdaLayerNormZero's LayerNorm (no affine)
constexpr float kRopeTheta = 10000.0f;  // x-transformers' RotaryEmbedding base

// An AdaLN-zero modulation linear whose output chunks `scale_chunks` are used as (1 + scale):
// the 1 is folded into the bias at load, so the output is the LayerNorm's weight as is.
LinearLayer load_modulation(Backend& backend, const WeightLoader& wl, const std::string& base,
                            int64_t dim, int64_t chunks,
                            std::initializer_list<int64_t> scale_chunks) {
  LinearLayer l;
  l.w = wl.linear(base, chunks * dim, dim);
  std::vector<float> bias = wl.floats(base + ".bias");
  if (static_cast<int64_t>(bias.size()) != chunks * dim)
    fail("dit: '", base, ".bias' has ", bias.size(), " values, expected ", chunks * dim);
  for (const int64_t c : scale_chunks) {
    for (int64_t i = 0; i < dim; ++i) bias[static_cast<size_t>(c * dim + i)] += 1.0f;
  }
  l.b = ConstArray<float>::upload(backend, bias);
  l.in = dim;
  l.out = chunks * dim;
  return l;
}

// CausalConvPositionEmbedding's grouped conv, causal: its kernel-1 rows of left context come
// from causal_conv (zeros at the start, or a stream's saved tail).
ConvLayer load_position_conv(Backend& backend, const WeightLoader& wl, const std::string& base,
                             int64_t dim) {
  const int64_t groups = DitConfig::kConvPosGroups, k = DitConfig::kConvPosKernel;
  const std::vector<float> w = wl.weight(base);
  if (static_cast<int64_t>(w.size()) != dim * (dim / groups) * k)
    fail("dit: '", base, ".weight' is not [", dim, ", ", dim / groups, ", ", k, "]");
  ConvLayer c;
  c.w = backend.prepare_conv1d(w.data(), dim, dim / groups, k, groups, wl.format());
  c.b = wl.constants(base + ".bias");
  c.shape.in_channels = c.shape.out_channels = dim;
  c.shape.kernel = k;
  c.shape.groups = groups;
  return c;
}

}  // namespace

struct DitEstimator::Weights {
  LinearLayer time1, time2, proj;
  ConvLayer pos1, pos2;
  struct Block {
    LinearLayer modulation;  // shift, 1 + scale, gate (attention); shift, 1 + scale, gate (MLP)
    LinearLayer q, k, v, out, ff1, ff2;
  };
  std::vector<Block> blocks;
  LinearLayer final_modulation;  // 1 + scale, shift
  LinearLayer proj_out;
};

DitEstimator::DitEstimator(Backend& backend, const DitConfig& config, const StateDict& sd,
                           WeightFormat format)
    : backend_(backend), config_(config), w_(std::make_unique<Weights>()) {
  config_.validate();
  const DitConfig& c = config_;
  const WeightLoader wl(backend, sd, format);
  const std::string p = "decoder.estimator";
  Weights& w = *w_;
  w.time1 = load_linear(wl, p + ".time_embed.time_mlp.0", c.dim, DitConfig::kTimeSinusoidDim);
  w.time2 = load_linear(wl, p + ".time_embed.time_mlp.2", c.dim, c.dim);
  w.proj = load_linear(wl, p + ".input_embed.proj", c.dim, c.input_dim());
  w.pos1 = load_position_conv(backend, wl, p + ".input_embed.conv_pos_embed.conv1.0", c.dim);
  w.pos2 = load_position_conv(backend, wl, p + ".input_embed.conv_pos_embed.conv2.0", c.dim);
  // The rotary frequencies are fixed by dim_head; a checkpoint that stores others is not a
  // model this code describes.
  if (const Tensor* inv = sd.find(p + ".rotary_embed.inv_freq")) {
    const std::vector<float> got = inv->to_float_vector();
    for (size_t i = 0; i < got.size(); ++i) {
      const double want =
          1.0 / std::pow(static_cast<double>(kRopeTheta),
                         2.0 * static_cast<double>(i) / static_cast<double>(c.dim_head));
      if (std::fabs(got[i] - want) > 1e-6 * want + 1e-12)
        fail(sd.label, ": rotary_embed.inv_freq[", i, "] is ", got[i], ", expected ", want,
             " (base 10000 over ", c.dim_head, " channels)");
    }
  }
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = p + ".transformer_blocks." + std::to_string(i);
    Weights::Block blk;
    blk.modulation = load_modulation(backend, wl, b + ".attn_norm.linear", c.dim, 6, {1, 4});
    blk.q = load_linear(wl, b + ".attn.to_q", c.inner_dim(), c.dim);
    blk.k = load_linear(wl, b + ".attn.to_k", c.inner_dim(), c.dim);
    blk.v = load_linear(wl, b + ".attn.to_v", c.inner_dim(), c.dim);
    blk.out = load_linear(wl, b + ".attn.to_out.0", c.dim, c.inner_dim());
    blk.ff1 = load_linear(wl, b + ".ff.ff.0.0", c.dim * c.ff_mult, c.dim);
    blk.ff2 = load_linear(wl, b + ".ff.ff.2", c.dim, c.dim * c.ff_mult);
    w.blocks.push_back(std::move(blk));
  }
  w.final_modulation = load_modulation(backend, wl, p + ".norm_out.linear", c.dim, 2, {0});
  w.proj_out = load_linear(wl, p + ".proj_out", c.out_channels, c.dim);
}

DitEstimator::~DitEstimator() = default;

void DitEstimator::estimate(std::span<const DitInput> batch, Batch& out,
                            std::span<DitTrace* const> traces) const {
  const DitConfig& c = config_;
  const Weights& w = *w_;
  const size_t n = batch.size();
  if (!traces.empty() && traces.size() != n) fail("dit: one trace slot per input, or none");
  for (const DitInput& in : batch) {
    if (in.x == nullptr || in.x->rows <= 0 || in.x->ch != c.mel_dim)
      fail("dit: x must be [T > 0, ", c.mel_dim, "]");
    if (in.mu != nullptr && (in.mu->rows != in.x->rows || in.mu->ch != c.mu_dim))
      fail("dit: mu must be [", in.x->rows, ", ", c.mu_dim, "]");
    if (in.cond != nullptr && (in.cond->rows != in.x->rows || in.cond->ch != c.mel_dim))
      fail("dit: cond must be [", in.x->rows, ", ", c.mel_dim, "]");
    if (in.spks != nullptr && (in.spks->rows != 1 || in.spks->ch != c.spk_dim))
      fail("dit: spks must be [1, ", c.spk_dim, "]");
    if (in.state != nullptr) {
      if (!in.chunked) fail("dit: incremental state needs chunk masks (streaming)");
      const int64_t end = in.state->committed + in.x->rows;
      if (in.commit < in.state->committed || in.commit > end)
        fail("dit: commit frame ", in.commit, " outside this call's frames");
      if (in.state->kv.empty()) {
        in.state->kv.resize(static_cast<size_t>(c.depth));
        for (auto& h : in.state->kv) h.half = in.state->half_kv;
        in.state->conv_tails.resize(2);  // the two position convs
      }
    }
  }
  const auto traced = [&](size_t i) { return traces.empty() ? nullptr : traces[i]; };
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);

  // temb, and SiLU(temb): what every AdaLN-zero modulation reads.
  Batch sinus(n), t1(n), temb(n), silu_temb(n);
  for (size_t i = 0; i < n; ++i) {
    upload(e, timestep_embedding(batch[i].t, DitConfig::kTimeSinusoidDim), 1,
           DitConfig::kTimeSinusoidDim, sinus[i]);
  }
  w.time1.run(e, sinus, t1);
  activate(e, t1, {ActivationKind::Silu});
  w.time2.run(e, t1, temb);
  for (size_t i = 0; i < n; ++i) copy_act(e, temb[i], silu_temb[i]);
  activate(e, silu_temb, {ActivationKind::Silu});

  // [x | cond | mu | spks] (the official order), projected, plus the position embedding.
  Batch cat(n), h(n), p1(n), p2(n);
  const int64_t width = c.input_dim();
  for (size_t i = 0; i < n; ++i) {
    const DitInput& in = batch[i];
    const int64_t T = in.x->rows;
    cat[i].resize(e, T, width);
    int64_t col = 0;
    auto part = [&](const Act* src, int64_t ch, int64_t ld_src) {
      if (src != nullptr) {
        e.k.copy_2d(e.s, src->ptr(), ld_src, cat[i].ptr() + col, width, T, ch);
      } else {
        e.k.fill_2d(e.s, cat[i].ptr() + col, width, T, ch, 0.0f);
      }
      col += ch;
    };
    part(in.x, c.mel_dim, c.mel_dim);
    part(in.cond, c.mel_dim, c.mel_dim);
    part(in.mu, c.mu_dim, c.mu_dim);
    part(in.spks, c.spk_dim, 0);  // one row, repeated over T
  }
  w.proj.run(e, cat, h);
  Batch scratch;
  for (size_t conv = 0; conv < 2; ++conv) {
    std::vector<CausalConvIo> io(n);
    for (size_t i = 0; i < n; ++i) {
      FlowEstimatorState* st = batch[i].state;
      io[i] = {conv == 0 ? &h[i] : &p1[i], conv == 0 ? &p1[i] : &p2[i],
               st != nullptr ? &st->conv_tails[conv] : nullptr, st != nullptr ? st->committed : 0,
               st != nullptr ? batch[i].commit : -1};
    }
    // Conv1 → Mish → conv2 → Mish: the first Mish is conv2's input activation.
    causal_conv(e, conv == 0 ? w.pos1 : w.pos2, io, scratch,
                conv == 0 ? Activation{} : Activation{ActivationKind::Mish});
  }
  activate(e, p2, {ActivationKind::Mish});
  for (size_t i = 0; i < n; ++i) {
    if (DitTrace* tr = traced(i)) {
      tr->temb = download(e, temb[i]);
      tr->xproj = download(e, h[i]);
    }
    e.k.axpby(e.s, p2[i].ptr(), h[i].ptr(), static_cast<int64_t>(h[i].size()), 1.0f, 1.0f);
    if (DitTrace* tr = traced(i)) tr->xemb = download(e, h[i]);
  }

  // Positions 0..T-1 from the first (prompt) frame, for the rotary embedding.
  std::vector<std::vector<int32_t>> positions(n);
  for (size_t i = 0; i < n; ++i) {
    positions[i].resize(static_cast<size_t>(h[i].rows));
    const FlowEstimatorState* st = batch[i].state;  // absolute positions from frame 0
    std::iota(positions[i].begin(), positions[i].end(),
              static_cast<int32_t>(st != nullptr ? st->committed : 0));
  }
  AttentionArgs attn;
  attn.num_heads = attn.num_kv_heads = c.heads;
  attn.head_dim = c.dim_head;
  attn.chunk = c.static_chunk_size;
  attn.left_chunks = c.num_decoding_left_chunks;

  Batch mod(n), nrm(n), q(n), k(n), v(n), att(n), tmp(n), ff(n);
  const int64_t d = c.dim;
  // LN(h) × (1 + scale) + shift: a LayerNorm whose weight and bias are the modulation's.
  auto modulated_norm = [&](const Batch& m, int64_t scale_chunk, int64_t shift_chunk) {
    for (size_t i = 0; i < n; ++i) {
      nrm[i].resize(e, h[i].rows, d);
      e.k.layer_norm(e.s, h[i].ptr(), nrm[i].ptr(), h[i].rows, d, m[i].ptr() + scale_chunk * d,
                     m[i].ptr() + shift_chunk * d, kNormEps);
    }
  };
  for (size_t l = 0; l < w.blocks.size(); ++l) {
    const Weights::Block& b = w.blocks[l];
    b.modulation.run(e, silu_temb, mod);
    modulated_norm(mod, 1, 0);
    b.q.run(e, nrm, q);
    b.k.run(e, nrm, k);
    b.v.run(e, nrm, v);
    std::vector<SelfAttentionIo> io(n);
    for (size_t i = 0; i < n; ++i) {
      // Only the first dim_head channels (head 0) are rotated, as the official DiT does.
      for (Act* a : {&q[i], &k[i]}) {
        e.k.rope(e.s, a->ptr(), a->rows, 1, c.dim_head, c.inner_dim(), positions[i].data(),
                 kRopeTheta, RopePairs::Adjacent);
      }
      FlowEstimatorState* st = batch[i].state;
      io[i] = {&q[i],
               nullptr,
               &k[i],
               &v[i],
               &att[i],
               st != nullptr ? &st->kv[l] : nullptr,
               st != nullptr ? st->committed : 0,
               st != nullptr ? batch[i].commit : -1,
               batch[i].chunked && c.static_chunk_size > 0};
      att[i].resize(e, q[i].rows, c.inner_dim());
    }
    self_attention(e, io, attn);
    b.out.run(e, att, tmp);
    for (size_t i = 0; i < n; ++i)
      e.k.gated_add(e.s, tmp[i].ptr(), mod[i].ptr() + 2 * d, h[i].ptr(), h[i].rows, d);
    modulated_norm(mod, 4, 3);
    b.ff1.run(e, nrm, ff);
    activate(e, ff, {ActivationKind::GeluTanh});
    b.ff2.run(e, ff, tmp);
    for (size_t i = 0; i < n; ++i)
      e.k.gated_add(e.s, tmp[i].ptr(), mod[i].ptr() + 5 * d, h[i].ptr(), h[i].rows, d);
    if (l == 0) {
      for (size_t i = 0; i < n; ++i)
        if (DitTrace* tr = traced(i)) tr->block0 = download(e, h[i]);
    }
  }
  w.final_modulation.run(e, silu_temb, mod);
  modulated_norm(mod, 0, 1);
  for (size_t i = 0; i < n; ++i)
    if (DitTrace* tr = traced(i)) tr->normout = download(e, nrm[i]);
  w.proj_out.run(e, nrm, out);
  stream->synchronize();
  for (const DitInput& in : batch) {
    if (in.state != nullptr) in.state->committed = in.commit;
  }
}

double DitEstimator::flops(int64_t frames, int64_t past, int64_t chunk) const {
  const DitConfig& c = config_;
  const Weights& w = *w_;
  double keys = 0;  // keys seen, summed over the new queries
  const int64_t end = past + frames;
  for (int64_t i = past; i < end; ++i)
    keys += static_cast<double>(chunk > 0 ? std::min(end, (i / chunk + 1) * chunk) : end);
  double f =
      w.proj.flops(frames) + w.pos1.flops(frames) + w.pos2.flops(frames) + w.proj_out.flops(frames);
  for (const auto& b : w.blocks) {
    for (const LinearLayer* l : {&b.q, &b.k, &b.v, &b.out, &b.ff1, &b.ff2}) f += l->flops(frames);
    f += 2.0 * 2.0 * keys * static_cast<double>(c.inner_dim());
  }
  return f;
}

}  // namespace cosy
