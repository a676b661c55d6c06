#include "model/param_schema.h"

#include <unordered_set>

#include "core/error.h"

namespace cosy {
namespace {

class SpecList {
 public:
  void add(std::string name, Shape shape) {
    specs_.push_back({std::move(name), std::move(shape), false, false});
  }
  void optional(std::string name, Shape shape) {
    specs_.push_back({std::move(name), std::move(shape), false, true});
  }
  void weight_norm(std::string name, Shape shape) {
    specs_.push_back({std::move(name), std::move(shape), true, false});
  }
  void linear(const std::string& p, int64_t out, int64_t in, bool bias = true) {
    add(p + ".weight", {out, in});
    if (bias) add(p + ".bias", {out});
  }
  void conv(const std::string& p, int64_t out, int64_t in, int64_t k) {
    add(p + ".weight", {out, in, k});
    add(p + ".bias", {out});
  }
  void wn_conv(const std::string& p, int64_t out, int64_t in, int64_t k) {
    weight_norm(p + ".weight", {out, in, k});
    add(p + ".bias", {out});
  }
  void layer_norm(const std::string& p, int64_t n) {
    add(p + ".weight", {n});
    add(p + ".bias", {n});
  }
  std::vector<ParamSpec> take() { return std::move(specs_); }

 private:
  std::vector<ParamSpec> specs_;
};

// espnet/wenet conformer layer without conv module or macaron FFN (CosyVoice2's setting).
void conformer_layer(SpecList& s, const std::string& p, const ConformerConfig& c) {
  const int64_t d = c.output_size;
  const std::string a = p + ".self_attn";
  s.add(a + ".pos_bias_u", {c.attention_heads, d / c.attention_heads});
  s.add(a + ".pos_bias_v", {c.attention_heads, d / c.attention_heads});
  for (const char* proj : {".linear_q", ".linear_k", ".linear_v", ".linear_out"})
    s.linear(a + proj, d, d);
  s.linear(a + ".linear_pos", d, d, /*bias=*/false);
  s.linear(p + ".feed_forward.w_1", c.linear_units, d);
  s.linear(p + ".feed_forward.w_2", d, c.linear_units);
  s.layer_norm(p + ".norm_ff", d);
  s.layer_norm(p + ".norm_mha", d);
}

// Matcha's CausalResnetBlock1D.
void resnet_block(SpecList& s, const std::string& p, int64_t dim, int64_t dim_out,
                  int64_t time_dim) {
  s.linear(p + ".mlp.1", dim_out, time_dim);
  s.conv(p + ".block1.block.0", dim_out, dim, 3);
  s.layer_norm(p + ".block1.block.2", dim_out);
  s.conv(p + ".block2.block.0", dim_out, dim_out, 3);
  s.layer_norm(p + ".block2.block.2", dim_out);
  s.conv(p + ".res_conv", dim_out, dim, 1);
}

// diffusers' BasicTransformerBlock with self-attention and a GELU feed-forward.
void transformer_block(SpecList& s, const std::string& p, int64_t dim, const EstimatorConfig& e) {
  const int64_t inner = e.num_heads * e.attention_head_dim;
  s.layer_norm(p + ".norm1", dim);
  s.linear(p + ".attn1.to_q", inner, dim, false);
  s.linear(p + ".attn1.to_k", inner, dim, false);
  s.linear(p + ".attn1.to_v", inner, dim, false);
  s.linear(p + ".attn1.to_out.0", dim, inner);
  s.layer_norm(p + ".norm3", dim);
  s.linear(p + ".ff.net.0.proj", dim * 4, dim);
  s.linear(p + ".ff.net.2", dim, dim * 4);
}

// HiFT's ResBlock: dilated convs, plain convs and Snake activations.
void hift_resblock(SpecList& s, const std::string& p, int64_t ch, int64_t k,
                   const std::vector<int64_t>& dilations) {
  for (size_t i = 0; i < dilations.size(); ++i)
    s.wn_conv(p + ".convs1." + std::to_string(i), ch, ch, k);
  for (size_t i = 0; i < dilations.size(); ++i)
    s.wn_conv(p + ".convs2." + std::to_string(i), ch, ch, k);
  for (size_t i = 0; i < dilations.size(); ++i)
    s.add(p + ".activations1." + std::to_string(i) + ".alpha", {ch});
  for (size_t i = 0; i < dilations.size(); ++i)
    s.add(p + ".activations2." + std::to_string(i) + ".alpha", {ch});
}

}  // namespace

std::vector<ParamSpec> llm_param_specs(const LlmConfig& c) {
  SpecList s;
  const QwenConfig& q = c.qwen;
  const int64_t h = q.hidden_size;
  const int64_t hd = q.head_dim();
  // CosyVoice2: row 0 sos, row 1 task_id. CosyVoice3 keeps them in speech_embedding.
  if (c.family == ModelFamily::CosyVoice2) s.add("llm_embedding.weight", {2, c.llm_input_size});
  s.add("llm.model.model.embed_tokens.weight", {q.vocab_size, h});
  for (int64_t i = 0; i < q.num_hidden_layers; ++i) {
    const std::string p = "llm.model.model.layers." + std::to_string(i);
    s.linear(p + ".self_attn.q_proj", q.num_attention_heads * hd, h);
    s.linear(p + ".self_attn.k_proj", q.num_key_value_heads * hd, h);
    s.linear(p + ".self_attn.v_proj", q.num_key_value_heads * hd, h);
    s.linear(p + ".self_attn.o_proj", h, q.num_attention_heads * hd, false);
    s.linear(p + ".mlp.gate_proj", q.intermediate_size, h, false);
    s.linear(p + ".mlp.up_proj", q.intermediate_size, h, false);
    s.linear(p + ".mlp.down_proj", h, q.intermediate_size, false);
    s.add(p + ".input_layernorm.weight", {h});
    s.add(p + ".post_attention_layernorm.weight", {h});
  }
  s.add("llm.model.model.norm.weight", {h});
  s.optional("llm.model.lm_head.weight", {q.vocab_size, h});  // text head: never computed
  s.linear("llm_decoder", c.decoder_vocab(), c.llm_output_size, c.decoder_bias());
  s.add("speech_embedding.weight", {c.decoder_vocab(), c.llm_input_size});
  return s.take();
}

// CosyVoice3's flow: the token embedding, PreLookaheadLayer and the DiT estimator.
std::vector<ParamSpec> dit_flow_param_specs(const FlowConfig& c) {
  SpecList s;
  const PreLookaheadConfig& la = c.pre_lookahead;
  const DitConfig& d = c.decoder.dit;
  s.add("input_embedding.weight", {c.vocab_size, c.input_size});
  s.linear("spk_embed_affine_layer", c.output_size, c.spk_embed_dim);
  s.conv("pre_lookahead_layer.conv1", la.channels, la.in_channels, la.pre_lookahead_len + 1);
  s.conv("pre_lookahead_layer.conv2", la.in_channels, la.channels, 3);
  const std::string est = "decoder.estimator";
  s.linear(est + ".time_embed.time_mlp.0", d.dim, DitConfig::kTimeSinusoidDim);
  s.linear(est + ".time_embed.time_mlp.2", d.dim, d.dim);
  s.linear(est + ".input_embed.proj", d.dim, d.input_dim());
  for (const char* conv : {".conv1.0", ".conv2.0"}) {
    s.conv(est + ".input_embed.conv_pos_embed" + conv, d.dim, d.dim / DitConfig::kConvPosGroups,
           DitConfig::kConvPosKernel);
  }
  // A persistent buffer in the pinned x-transformers; computed when a file lacks it.
  s.optional(est + ".rotary_embed.inv_freq", {d.dim_head / 2});
  for (int64_t i = 0; i < d.depth; ++i) {
    const std::string p = est + ".transformer_blocks." + std::to_string(i);
    s.linear(p + ".attn_norm.linear", 6 * d.dim, d.dim);  // AdaLN-zero: shift/scale/gate × 2
    for (const char* proj : {".attn.to_q", ".attn.to_k", ".attn.to_v"})
      s.linear(p + proj, d.inner_dim(), d.dim);
    s.linear(p + ".attn.to_out.0", d.dim, d.inner_dim());
    s.linear(p + ".ff.ff.0.0", d.dim * d.ff_mult, d.dim);
    s.linear(p + ".ff.ff.2", d.dim, d.dim * d.ff_mult);
  }
  s.linear(est + ".norm_out.linear", 2 * d.dim, d.dim);
  s.linear(est + ".proj_out", d.out_channels, d.dim);
  return s.take();
}

std::vector<ParamSpec> flow_param_specs(const FlowConfig& c) {
  if (c.family == ModelFamily::CosyVoice3) return dit_flow_param_specs(c);
  SpecList s;
  const ConformerConfig& enc = c.encoder;
  const int64_t d = enc.output_size;
  s.add("input_embedding.weight", {c.vocab_size, c.input_size});
  s.linear("spk_embed_affine_layer", c.output_size, c.spk_embed_dim);
  s.linear("encoder.embed.out.0", d, enc.input_size);
  s.layer_norm("encoder.embed.out.1", d);
  s.conv("encoder.pre_lookahead_layer.conv1", d, d, c.pre_lookahead_len + 1);
  s.conv("encoder.pre_lookahead_layer.conv2", d, d, 3);
  for (int64_t i = 0; i < enc.num_blocks; ++i)
    conformer_layer(s, "encoder.encoders." + std::to_string(i), enc);
  s.conv("encoder.up_layer.conv", d, d, enc.upsample_stride * 2 + 1);
  s.linear("encoder.up_embed.out.0", d, d);
  s.layer_norm("encoder.up_embed.out.1", d);
  for (int64_t i = 0; i < enc.num_up_blocks; ++i)
    conformer_layer(s, "encoder.up_encoders." + std::to_string(i), enc);
  s.layer_norm("encoder.after_norm", d);
  s.linear("encoder_proj", c.output_size, d);

  const EstimatorConfig& e = c.decoder.estimator;
  const std::string est = "decoder.estimator";
  const int64_t tdim = e.time_embed_dim();
  s.linear(est + ".time_mlp.linear_1", tdim, e.in_channels);
  s.linear(est + ".time_mlp.linear_2", tdim, tdim);
  auto transformers = [&](const std::string& p, int64_t dim) {
    for (int64_t j = 0; j < e.n_blocks; ++j)
      transformer_block(s, p + ".1." + std::to_string(j), dim, e);
  };
  int64_t in = e.in_channels;
  for (size_t i = 0; i < e.channels.size(); ++i) {
    const int64_t out = e.channels[i];
    const std::string p = est + ".down_blocks." + std::to_string(i);
    resnet_block(s, p + ".0", in, out, tdim);
    transformers(p, out);
    const bool last = i + 1 == e.channels.size();
    s.conv(p + (last ? ".2" : ".2.conv"), out, out, 3);  // CausalConv1d, or Downsample1D's conv
    in = out;
  }
  for (int64_t i = 0; i < e.num_mid_blocks; ++i) {
    const std::string p = est + ".mid_blocks." + std::to_string(i);
    resnet_block(s, p + ".0", e.channels.back(), e.channels.back(), tdim);
    transformers(p, e.channels.back());
  }
  std::vector<int64_t> up(e.channels.rbegin(), e.channels.rend());
  up.push_back(e.channels.front());
  for (size_t i = 0; i + 1 < up.size(); ++i) {
    const int64_t out = up[i + 1];
    const std::string p = est + ".up_blocks." + std::to_string(i);
    resnet_block(s, p + ".0", up[i] * 2, out, tdim);  // skip connection doubles the input
    transformers(p, out);
    const bool last = i + 2 == up.size();
    if (last) {
      s.conv(p + ".2", out, out, 3);
    } else {
      s.conv(p + ".2.conv", out, out, 4);  // Upsample1D's ConvTranspose1d: [in, out, 4]
    }
  }
  s.conv(est + ".final_block.block.0", up.back(), up.back(), 3);
  s.layer_norm(est + ".final_block.block.2", up.back());
  s.conv(est + ".final_proj", e.out_channels, up.back(), 1);
  return s.take();
}

std::vector<ParamSpec> hift_param_specs(const HiftConfig& c) {
  SpecList s;
  const int64_t base = c.base_channels;
  const int64_t stft_ch = c.n_fft + 2;
  s.linear("m_source.l_linear", 1, c.nb_harmonics + 1);
  // The causal generator's conv_pre sees conv_pre_look_right frames ahead and none behind.
  s.wn_conv("conv_pre", base, c.in_channels, c.causal ? c.conv_pre_look_right + 1 : 7);
  for (size_t i = 0; i < c.upsample_rates.size(); ++i) {
    // ConvTranspose1d weights are [in, out, k]; the causal generator's are Conv1d weights,
    // [out, in, k].
    const int64_t in = base >> i, out = base >> (i + 1), k = c.upsample_kernel_sizes[i];
    s.weight_norm("ups." + std::to_string(i) + ".weight",
                  c.causal ? Shape{out, in, k} : Shape{in, out, k});
    s.add("ups." + std::to_string(i) + ".bias", {out});
  }
  // Source downsampling mirrors the upsampling: cumulative rates, reversed.
  std::vector<int64_t> cum{1};
  for (size_t i = c.upsample_rates.size(); i-- > 1;)
    cum.push_back(cum.back() * c.upsample_rates[i]);
  for (size_t i = 0; i < c.upsample_rates.size(); ++i) {
    const int64_t u = cum[c.upsample_rates.size() - 1 - i];
    const int64_t ch = base >> (i + 1);
    s.conv("source_downs." + std::to_string(i), ch, stft_ch, u == 1 ? 1 : u * 2);
  }
  for (size_t i = 0; i < c.upsample_rates.size(); ++i) {
    hift_resblock(s, "source_resblocks." + std::to_string(i), base >> (i + 1),
                  c.source_resblock_kernel_sizes[i], c.source_resblock_dilation_sizes[i]);
  }
  const size_t kernels = c.resblock_kernel_sizes.size();
  for (size_t i = 0; i < c.upsample_rates.size(); ++i) {
    for (size_t j = 0; j < kernels; ++j) {
      hift_resblock(s, "resblocks." + std::to_string(i * kernels + j), base >> (i + 1),
                    c.resblock_kernel_sizes[j], c.resblock_dilation_sizes[j]);
    }
  }
  s.wn_conv("conv_post", stft_ch, base >> c.upsample_rates.size(), 7);
  const auto& f0 = c.f0_predictor;
  for (int i = 0; i < 5; ++i) {
    // The causal predictor's first conv looks 3 frames ahead (k = 4).
    s.wn_conv("f0_predictor.condnet." + std::to_string(2 * i), f0.cond_channels,
              i == 0 ? f0.in_channels : f0.cond_channels, i == 0 && f0.causal ? 4 : 3);
  }
  s.linear("f0_predictor.classifier", f0.num_class, f0.cond_channels);
  return s.take();
}

std::vector<WeightNormNames> weight_norm_forms(const std::string& weight_name) {
  const std::string base =
      weight_name.substr(0, weight_name.size() - std::string(".weight").size());
  return {
      {base + ".parametrizations.weight.original0", base + ".parametrizations.weight.original1"},
      {base + ".weight_g", base + ".weight_v"}};
}

int64_t count_parameters(const std::vector<ParamSpec>& specs) {
  int64_t n = 0;
  for (const auto& s : specs) n += shape_numel(s.shape);
  return n;
}

void check_state_dict(const StateDict& sd, const std::vector<ParamSpec>& specs) {
  std::unordered_set<std::string> explained;
  auto check = [&](const std::string& name, const Shape& expected) {
    const Tensor* t = sd.find(name);
    if (t == nullptr)
      fail(sd.label, ": missing tensor '", name, "' (expected shape ", shape_str(expected), ")");
    if (t->shape() != expected) {
      fail(sd.label, ": tensor '", name, "' has shape ", shape_str(t->shape()),
           " but the config expects ", shape_str(expected));
    }
    if (!is_floating(t->dtype()))
      fail(sd.label, ": tensor '", name, "' has dtype ", dtype_name(t->dtype()),
           ", expected a float type");
    explained.insert(name);
  };
  for (const ParamSpec& spec : specs) {
    if (spec.optional && sd.find(spec.name) == nullptr) continue;
    if (!spec.weight_norm || sd.find(spec.name) != nullptr) {
      check(spec.name, spec.shape);
      continue;
    }
    bool found = false;
    for (const auto& form : weight_norm_forms(spec.name)) {
      if (sd.find(form.g) == nullptr && sd.find(form.v) == nullptr) continue;
      check(form.g, {spec.shape[0], 1, 1});
      check(form.v, spec.shape);
      found = true;
      break;
    }
    if (!found) {
      fail(sd.label, ": missing tensor '", spec.name, "' (expected shape ", shape_str(spec.shape),
           ", or its weight-norm parts '", weight_norm_forms(spec.name)[0].v, "')");
    }
  }
  for (const std::string& name : sd.names()) {
    if (explained.count(name) == 0) {
      fail(sd.label, ": unexpected tensor '", name, "' ", shape_str(sd.at(name).shape()),
           " that the config does not describe (a different model variant or config?)");
    }
  }
}

}  // namespace cosy
