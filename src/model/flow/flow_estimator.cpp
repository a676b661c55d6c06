#include "model/flow/flow_estimator.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "model/scratch_pool.h"
#include "model/stream_ops.h"

namespace cosy {

namespace {

// CausalBlock1D: causal conv (k=3) → LayerNorm over channels → Mish.
struct CausalBlock {
  ConvLayer conv;  // unpadded: causal_conv supplies the left context
  LayerNormLayer norm;
};

// CausalResnetBlock1D: block1 → + mlp(time) → block2 → + 1x1 residual conv.
struct ResnetBlock {
  CausalBlock block1, block2;
  LinearLayer mlp;  // after a Mish on the time embedding
  ConvLayer res;
};

// diffusers' BasicTransformerBlock: pre-norm self-attention, pre-norm GELU feed-forward.
struct TransformerBlock {
  LayerNormLayer norm1, norm3;
  LinearLayer q, k, v, out;
  LinearLayer ff1, ff2;
};

struct Stage {
  ResnetBlock resnet;
  std::vector<TransformerBlock> transformers;
  ConvLayer post;  // causal conv after the stage (down and up stages only)
};

CausalBlock load_causal_block(const WeightLoader& wl, const std::string& p, int64_t in,
                              int64_t out) {
  return {load_conv(wl, p + ".block.0", out, in, 3, 0, 0), load_layer_norm(wl, p + ".block.2")};
}

ResnetBlock load_resnet(const WeightLoader& wl, const std::string& p, int64_t in, int64_t out,
                        int64_t tdim) {
  return {load_causal_block(wl, p + ".block1", in, out),
          load_causal_block(wl, p + ".block2", out, out), load_linear(wl, p + ".mlp.1", out, tdim),
          load_conv(wl, p + ".res_conv", out, in, 1, 0, 0)};
}

TransformerBlock load_transformer(const WeightLoader& wl, const std::string& p, int64_t dim,
                                  const EstimatorConfig& c) {
  const int64_t inner = c.num_heads * c.attention_head_dim;
  TransformerBlock b;
  b.norm1 = load_layer_norm(wl, p + ".norm1");
  b.norm3 = load_layer_norm(wl, p + ".norm3");
  b.q = load_linear(wl, p + ".attn1.to_q", inner, dim, false);
  b.k = load_linear(wl, p + ".attn1.to_k", inner, dim, false);
  b.v = load_linear(wl, p + ".attn1.to_v", inner, dim, false);
  b.out = load_linear(wl, p + ".attn1.to_out.0", dim, inner);
  b.ff1 = load_linear(wl, p + ".ff.net.0.proj", dim * 4, dim);
  b.ff2 = load_linear(wl, p + ".ff.net.2", dim, dim * 4);
  return b;
}

Stage load_stage(const WeightLoader& wl, const std::string& p, int64_t in, int64_t out,
                 const EstimatorConfig& c, bool with_post) {
  Stage s;
  s.resnet = load_resnet(wl, p + ".0", in, out, c.time_embed_dim());
  for (int64_t j = 0; j < c.n_blocks; ++j)
    s.transformers.push_back(load_transformer(wl, p + ".1." + std::to_string(j), out, c));
  if (with_post) s.post = load_conv(wl, p + ".2", out, out, 3, 0, 0);
  return s;
}

}  // namespace

std::vector<float> timestep_embedding(float t, int64_t dim) {
  const int64_t half = dim / 2;
  const auto step = static_cast<float>(-(std::log(10000.0) / static_cast<double>(half - 1)));
  const float scaled = 1000.0f * t;
  std::vector<float> emb(static_cast<size_t>(dim));
  for (int64_t k = 0; k < half; ++k) {
    const float freq = std::exp(static_cast<float>(k) * step);
    const double arg = static_cast<double>(scaled * freq);
    emb[static_cast<size_t>(k)] = static_cast<float>(std::sin(arg));
    emb[static_cast<size_t>(half + k)] = static_cast<float>(std::cos(arg));
  }
  return emb;
}

struct FlowEstimator::Weights {
  LinearLayer time1, time2;
  Stage down;
  std::vector<Stage> mid;
  Stage up;
  CausalBlock final_block;
  ConvLayer final_proj;
  size_t bytes = 0;
};

namespace {

// The activations one estimator pass works in, leased per call: every ResNet and every
// transformer block of every pass has the same shapes, so after the first pass the buffers
// are reused as they are. Fresh buffers per layer cost page faults and zero-filling of
// megabytes per layer (about a tenth of the flow's time).
struct Workspace {
  Batch input, skip, mid, y, cat;        // the U-Net's own activations
  Batch res_h, res_t;                    // inside a ResNet block
  Batch tf_h, tf_q, tf_k, tf_v, tf_att;  // inside a transformer block
  Batch temb, t1, t2;                    // the time embedding
  Batch conv_in;                         // a causal conv's input with its context rows
};

}  // namespace

struct FlowEstimator::Workspaces : ScratchPool<Workspace> {};

FlowEstimator::FlowEstimator(Backend& backend, const CfmConfig& config, int64_t mel_bins,
                             const StateDict& sd, WeightFormat format)
    : backend_(backend),
      config_(config),
      mel_bins_(mel_bins),
      bf16_attention_(format == WeightFormat::BF16),
      w_(std::make_unique<Weights>()),
      workspaces_(std::make_unique<Workspaces>()) {
  const EstimatorConfig& c = config_.estimator;
  if (c.channels.size() != 1) {
    fail("flow estimator: ", c.channels.size(),
         " channel stages given; CosyVoice2's decoder has one (down/up-sampling U-Nets are not "
         "supported)");
  }
  if (c.in_channels != 3 * mel_bins_ + config_.spk_emb_dim) {
    fail("flow estimator: in_channels ", c.in_channels, " is not x + mu + spks + cond (",
         3 * mel_bins_ + config_.spk_emb_dim, ")");
  }
  const WeightLoader wl(backend, sd, format);
  const std::string p = "decoder.estimator";
  const int64_t ch = c.channels[0], tdim = c.time_embed_dim();
  Weights& w = *w_;
  w.time1 = load_linear(wl, p + ".time_mlp.linear_1", tdim, c.in_channels);
  w.time2 = load_linear(wl, p + ".time_mlp.linear_2", tdim, tdim);
  w.down = load_stage(wl, p + ".down_blocks.0", c.in_channels, ch, c, true);
  for (int64_t i = 0; i < c.num_mid_blocks; ++i)
    w.mid.push_back(load_stage(wl, p + ".mid_blocks." + std::to_string(i), ch, ch, c, false));
  w.up = load_stage(wl, p + ".up_blocks.0", 2 * ch, ch, c, true);
  w.final_block = load_causal_block(wl, p + ".final_block", ch, ch);
  w.final_proj = load_conv(wl, p + ".final_proj", c.out_channels, ch, 1, 0, 0);
  if (c.out_channels != mel_bins_)
    fail("flow estimator: out_channels ", c.out_channels, " != mel bins ", mel_bins_);

  auto add = [&](const auto& layer) { w.bytes += layer.w->bytes(); };
  auto add_stage = [&](const Stage& s) {
    add(s.resnet.block1.conv);
    add(s.resnet.block2.conv);
    add(s.resnet.mlp);
    add(s.resnet.res);
    for (const auto& t : s.transformers) {
      for (const auto* l : {&t.q, &t.k, &t.v, &t.out, &t.ff1, &t.ff2}) add(*l);
    }
    if (s.post.w) add(s.post);
  };
  add(w.time1);
  add(w.time2);
  add_stage(w.down);
  for (const auto& s : w.mid) add_stage(s);
  add_stage(w.up);
  add(w.final_block.conv);
  add(w.final_proj);
}

FlowEstimator::~FlowEstimator() = default;

size_t FlowEstimator::weight_bytes() const { return w_->bytes; }

namespace {

struct StageContext {
  Exec& e;
  const EstimatorConfig& c;
  const Batch& time_mish;  // Mish(time embedding), one row per sequence
  bool bf16_attention;
  std::span<const EstimatorInput> in;
  Workspace& ws;
  size_t next_conv = 0;  // run-order index of the next causal conv (its tail slot)
  size_t next_attn = 0;  // run-order index of the next transformer (its history slot)
};

void run_causal(StageContext& ctx, const ConvLayer& conv, const Batch& x, Batch& y) {
  const size_t slot = ctx.next_conv++;
  y.resize(x.size());
  std::vector<CausalConvIo> io(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    FlowEstimatorState* st = ctx.in[i].state;
    io[i] = {&x[i], &y[i], st != nullptr ? &st->conv_tails[slot] : nullptr,
             st != nullptr ? st->committed : 0, st != nullptr ? ctx.in[i].commit : -1};
  }
  causal_conv(ctx.e, conv, io, ctx.ws.conv_in);
}

void run_block(StageContext& ctx, const CausalBlock& b, const Batch& x, Batch& y) {
  run_causal(ctx, b.conv, x, y);
  b.norm.run(ctx.e, y, y);
  activate(ctx.e, y, {ActivationKind::Mish});
}

void run_resnet(StageContext& ctx, const ResnetBlock& r, const Batch& x, Batch& y) {
  Batch& h = ctx.ws.res_h;
  Batch& t = ctx.ws.res_t;
  run_block(ctx, r.block1, x, h);
  r.mlp.run(ctx.e, ctx.time_mish, t);
  for (size_t i = 0; i < h.size(); ++i)
    ctx.e.k.add_row(ctx.e.s, h[i].ptr(), t[i].ptr(), h[i].ptr(), h[i].rows, h[i].ch);
  run_block(ctx, r.block2, h, y);
  r.res.run(ctx.e, x, y, {}, /*accumulate=*/true);
}

void run_transformer(StageContext& ctx, const TransformerBlock& b, Batch& x) {
  const EstimatorConfig& c = ctx.c;
  const size_t n = x.size(), slot = ctx.next_attn++;
  Batch& h = ctx.ws.tf_h;
  Batch& q = ctx.ws.tf_q;
  Batch& k = ctx.ws.tf_k;
  Batch& v = ctx.ws.tf_v;
  Batch& att = ctx.ws.tf_att;
  att.resize(n);
  b.norm1.run(ctx.e, x, h);
  b.q.run(ctx.e, h, q);
  b.k.run(ctx.e, h, k);
  b.v.run(ctx.e, h, v);
  std::vector<SelfAttentionIo> io(n);
  for (size_t i = 0; i < n; ++i) {
    FlowEstimatorState* st = ctx.in[i].state;
    io[i] = {&q[i],
             nullptr,
             &k[i],
             &v[i],
             &att[i],
             st != nullptr ? &st->kv[slot] : nullptr,
             st != nullptr ? st->committed : 0,
             st != nullptr ? ctx.in[i].commit : -1,
             ctx.in[i].chunked && c.static_chunk_size > 0};
  }
  AttentionArgs a;
  a.num_heads = a.num_kv_heads = c.num_heads;
  a.head_dim = c.attention_head_dim;
  a.chunk = c.static_chunk_size;
  a.left_chunks = c.num_decoding_left_chunks;
  a.bf16 = ctx.bf16_attention;
  self_attention(ctx.e, io, a);
  b.out.run(ctx.e, att, x, /*accumulate=*/true);
  b.norm3.run(ctx.e, x, h);
  b.ff1.run(ctx.e, h, q);
  activate(ctx.e, q, {ActivationKind::GeluErf});
  b.ff2.run(ctx.e, q, x, /*accumulate=*/true);
}

void run_stage(StageContext& ctx, const Stage& s, const Batch& x, Batch& y) {
  run_resnet(ctx, s.resnet, x, y);
  for (const auto& t : s.transformers) run_transformer(ctx, t, y);
}

}  // namespace

void FlowEstimator::estimate(std::span<const EstimatorInput> batch, Batch& out) const {
  const EstimatorConfig& c = config_.estimator;
  const Weights& w = *w_;
  const size_t n = batch.size();
  const int64_t bins = mel_bins_, spk = c.in_channels - 3 * bins;
  for (const auto& in : batch) {
    if (in.x == nullptr || in.x->rows <= 0 || in.x->ch != bins)
      fail("flow estimator: x must be [T > 0, ", bins, "]");
    for (const Act* a : {in.mu, in.cond}) {
      if (a != nullptr && (a->rows != in.x->rows || a->ch != bins))
        fail("flow estimator: mu/cond must match x's shape [", in.x->rows, ", ", bins, "]");
    }
    if (in.spks != nullptr && (in.spks->rows != 1 || in.spks->ch != spk))
      fail("flow estimator: spks must be [1, ", spk, "]");
    if (in.state != nullptr) {
      if (!in.chunked) fail("flow estimator: incremental state needs chunk masks (streaming)");
      const int64_t end = in.state->committed + in.x->rows;
      if (in.commit < in.state->committed || in.commit > end)
        fail("flow estimator: commit frame ", in.commit, " outside this call's frames");
      if (in.state->kv.empty()) {
        const size_t resnets = 2 + w.mid.size();  // down, mid..., up
        in.state->kv.resize(static_cast<size_t>(c.n_blocks) * resnets);
        for (auto& h : in.state->kv) h.half = in.state->half_kv;
        in.state->conv_tails.resize(2 * resnets + 3);  // 2 per resnet, 2 posts, final block
      }
    }
  }
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  auto lease = workspaces_->take();
  Workspace& ws = *lease;

  // Time embedding per sequence, and its Mish (every ResNet's mlp starts with one).
  Batch& temb = ws.temb;
  Batch& t1 = ws.t1;
  Batch& t2 = ws.t2;
  temb.resize(n);
  for (size_t i = 0; i < n; ++i)
    upload(e, timestep_embedding(batch[i].t, c.in_channels), 1, c.in_channels, temb[i]);
  w.time1.run(e, temb, t1);
  activate(e, t1, {ActivationKind::Silu});
  w.time2.run(e, t1, t2);
  activate(e, t2, {ActivationKind::Mish});

  Batch& h = ws.input;
  Batch& y = ws.y;
  Batch& skip = ws.skip;
  h.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const EstimatorInput& in = batch[i];
    const int64_t T = in.x->rows;
    const int64_t ld = c.in_channels;
    h[i].resize(e, T, ld);
    // [x | mu | spks | cond] side by side; a missing part is zeros, spks is one row for all.
    auto part = [&](const Act* src, int64_t col, int64_t width, int64_t ld_src) {
      if (src != nullptr) {
        e.k.copy_2d(e.s, src->ptr(), ld_src, h[i].ptr() + col, ld, T, width);
      } else {
        e.k.fill_2d(e.s, h[i].ptr() + col, ld, T, width, 0.0f);
      }
    };
    part(in.x, 0, bins, bins);
    part(in.mu, bins, bins, bins);
    part(in.spks, 2 * bins, spk, 0);
    part(in.cond, 2 * bins + spk, bins, bins);
  }
  StageContext ctx{e, c, t2, bf16_attention_, batch, ws};
  Batch& mid = ws.mid;
  run_stage(ctx, w.down, h, skip);
  run_causal(ctx, w.down.post, skip, mid);
  for (const auto& s : w.mid) {
    run_stage(ctx, s, mid, y);
    std::swap(mid, y);
  }
  // Up: [x | skip] on channels.
  {
    Batch& cat = ws.cat;
    cat.resize(n);
    const int64_t ch = c.channels[0];
    for (size_t i = 0; i < n; ++i) {
      cat[i].resize(e, mid[i].rows, 2 * ch);
      e.k.copy_2d(e.s, mid[i].ptr(), ch, cat[i].ptr(), 2 * ch, mid[i].rows, ch);
      e.k.copy_2d(e.s, skip[i].ptr(), ch, cat[i].ptr() + ch, 2 * ch, mid[i].rows, ch);
    }
    run_stage(ctx, w.up, cat, y);
  }
  run_causal(ctx, w.up.post, y, mid);
  run_block(ctx, w.final_block, mid, y);
  w.final_proj.run(e, y, out);
  stream->synchronize();
  for (const auto& in : batch) {
    if (in.state != nullptr) in.state->committed = in.commit;
  }
}

double FlowEstimator::flops(int64_t frames, int64_t past, int64_t chunk) const {
  const EstimatorConfig& c = config_.estimator;
  const Weights& w = *w_;
  // Keys the new queries see, summed over them.
  double keys = 0;
  const int64_t end = past + frames;
  for (int64_t i = past; i < end; ++i) {
    if (chunk <= 0) {
      keys += static_cast<double>(end);
      continue;
    }
    const int64_t left = c.num_decoding_left_chunks;
    const int64_t begin = left < 0 ? 0 : std::max<int64_t>(0, (i / chunk - left) * chunk);
    keys += static_cast<double>(std::min(end, (i / chunk + 1) * chunk) - begin);
  }
  auto resnet = [&](const ResnetBlock& r) {
    return r.block1.conv.flops(frames) + r.block2.conv.flops(frames) + r.res.flops(frames);
  };
  auto stage = [&](const Stage& s) {
    double f = resnet(s.resnet);
    for (const auto& t : s.transformers) {
      for (const auto* l : {&t.q, &t.k, &t.v, &t.out, &t.ff1, &t.ff2}) f += l->flops(frames);
      f += 2.0 * 2.0 * keys * static_cast<double>(c.num_heads * c.attention_head_dim);
    }
    if (s.post.w) f += s.post.flops(frames);
    return f;
  };
  double total = stage(w.down) + stage(w.up);
  for (const auto& s : w.mid) total += stage(s);
  total += w.final_block.conv.flops(frames) + w.final_proj.flops(frames);
  return total;
}

}  // namespace cosy
