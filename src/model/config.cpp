#include "model/config.h"

#include <sstream>

#include "core/error.h"

namespace cosy {
namespace {

std::string str(int64_t v) { return std::to_string(v); }
std::string str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}
std::string str(bool v) { return v ? "true" : "false"; }
std::string str(const std::vector<int64_t>& v) { return int_list_str(v); }
std::string str(const std::vector<std::vector<int64_t>>& v) { return int_matrix_str(v); }

void positive(const char* name, int64_t v) {
  if (v <= 0) fail(name, " must be positive, got ", v);
}

}  // namespace

const char* model_family_name(ModelFamily f) {
  return f == ModelFamily::CosyVoice3 ? "CosyVoice3" : "CosyVoice2";
}

std::string int_list_str(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

std::string int_matrix_str(const std::vector<std::vector<int64_t>>& m) {
  std::string out = "[";
  for (size_t i = 0; i < m.size(); ++i) out += (i ? ", " : "") + int_list_str(m[i]);
  return out + "]";
}

std::string fields_to_string(const std::string& name, const ConfigFields& fields) {
  std::string out = name + "(";
  for (size_t i = 0; i < fields.size(); ++i)
    out += (i ? ", " : "") + fields[i].first + "=" + fields[i].second;
  return out + ")";
}

ConfigFields QwenConfig::fields() const {
  return {{"hidden_size", str(hidden_size)},
          {"intermediate_size", str(intermediate_size)},
          {"num_hidden_layers", str(num_hidden_layers)},
          {"num_attention_heads", str(num_attention_heads)},
          {"num_key_value_heads", str(num_key_value_heads)},
          {"head_dim", str(num_attention_heads > 0 ? head_dim() : 0)},
          {"vocab_size", str(vocab_size)},
          {"max_position_embeddings", str(max_position_embeddings)},
          {"rms_norm_eps", str(rms_norm_eps)},
          {"rope_theta", str(rope_theta)},
          {"tie_word_embeddings", str(tie_word_embeddings)},
          {"hidden_act", hidden_act}};
}

void QwenConfig::validate() const {
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("vocab_size", vocab_size);
  if (hidden_size % num_attention_heads != 0)
    fail("hidden_size ", hidden_size, " is not divisible by num_attention_heads ",
         num_attention_heads);
  if (num_attention_heads % num_key_value_heads != 0) {
    fail("num_attention_heads ", num_attention_heads, " is not a multiple of num_key_value_heads ",
         num_key_value_heads);
  }
  if (head_dim() % 2 != 0) fail("head_dim ", head_dim(), " must be even for rotary embedding");
  if (!(rms_norm_eps > 0) || !(rope_theta > 0))
    fail("rms_norm_eps and rope_theta must be positive");
  if (hidden_act != "silu")
    fail("hidden_act '", hidden_act, "' is not supported (Qwen2 uses silu)");
}

ConfigFields LlmConfig::fields() const {
  return {{"class", class_name},
          {"family", model_family_name(family)},
          {"llm_input_size", str(llm_input_size)},
          {"llm_output_size", str(llm_output_size)},
          {"speech_token_size", str(speech_token_size)},
          {"mix_ratio", str(mix_ratio)},
          {"sampling", cat("ras(top_p=", sampling.top_p, ", top_k=", sampling.top_k,
                           ", win_size=", sampling.win_size, ", tau_r=", sampling.tau_r, ")")}};
}

void LlmConfig::validate() const {
  positive("llm.llm_input_size", llm_input_size);
  positive("llm.llm_output_size", llm_output_size);
  positive("llm.speech_token_size", speech_token_size);
  if (mix_ratio.size() != 2 || mix_ratio[0] <= 0 || mix_ratio[1] <= 0)
    fail("llm.mix_ratio must be two positive integers");
  if (!(sampling.top_p > 0 && sampling.top_p <= 1)) fail("llm.sampling.top_p must be in (0, 1]");
  positive("llm.sampling.top_k", sampling.top_k);
  positive("llm.sampling.win_size", sampling.win_size);
  with_context("CosyVoice-BlankEN/config.json", [&] { qwen.validate(); });
  if (llm_input_size != qwen.hidden_size || llm_output_size != qwen.hidden_size) {
    fail("llm.llm_input_size/llm_output_size (", llm_input_size, "/", llm_output_size,
         ") must equal the Qwen2 hidden_size (", qwen.hidden_size,
         ") in CosyVoice-BlankEN/config.json");
  }
}

ConfigFields ConformerConfig::fields() const {
  return {{"input_size", str(input_size)},
          {"output_size", str(output_size)},
          {"attention_heads", str(attention_heads)},
          {"linear_units", str(linear_units)},
          {"num_blocks", str(num_blocks)},
          {"num_up_blocks", str(num_up_blocks)},
          {"static_chunk_size", str(static_chunk_size)},
          {"use_dynamic_chunk", str(use_dynamic_chunk)},
          {"normalize_before", str(normalize_before)},
          {"input_layer", input_layer},
          {"pos_enc_layer_type", pos_enc_layer_type},
          {"selfattention_layer_type", selfattention_layer_type}};
}

void ConformerConfig::validate() const {
  positive("flow.encoder.input_size", input_size);
  positive("flow.encoder.output_size", output_size);
  positive("flow.encoder.attention_heads", attention_heads);
  positive("flow.encoder.linear_units", linear_units);
  positive("flow.encoder.num_blocks", num_blocks);
  if (output_size % attention_heads != 0)
    fail("flow.encoder.output_size must be divisible by attention_heads");
  if (static_chunk_size < 0) fail("flow.encoder.static_chunk_size must not be negative");
  if (!normalize_before) fail("flow.encoder.normalize_before: False is not supported");
  if (use_cnn_module)
    fail("flow.encoder.use_cnn_module: True is not supported (CosyVoice2 does not use it)");
  if (macaron_style)
    fail("flow.encoder.macaron_style: True is not supported (CosyVoice2 does not use it)");
  if (input_layer != "linear")
    fail("flow.encoder.input_layer '", input_layer, "' is not supported (expected 'linear')");
  if (pos_enc_layer_type != "rel_pos_espnet")
    fail("flow.encoder.pos_enc_layer_type '", pos_enc_layer_type, "' is not supported");
  if (selfattention_layer_type != "rel_selfattn") {
    fail("flow.encoder.selfattention_layer_type '", selfattention_layer_type, "' is not supported");
  }
}

ConfigFields EstimatorConfig::fields() const {
  return {{"in_channels", str(in_channels)},
          {"out_channels", str(out_channels)},
          {"channels", str(channels)},
          {"attention_head_dim", str(attention_head_dim)},
          {"n_blocks", str(n_blocks)},
          {"num_mid_blocks", str(num_mid_blocks)},
          {"num_heads", str(num_heads)},
          {"act_fn", act_fn},
          {"static_chunk_size", str(static_chunk_size)},
          {"num_decoding_left_chunks", str(num_decoding_left_chunks)}};
}

void EstimatorConfig::validate() const {
  positive("estimator.in_channels", in_channels);
  positive("estimator.out_channels", out_channels);
  if (channels.empty()) fail("estimator.channels must not be empty");
  for (int64_t c : channels) positive("estimator.channels[i]", c);
  positive("estimator.attention_head_dim", attention_head_dim);
  positive("estimator.num_heads", num_heads);
  if (n_blocks < 0 || num_mid_blocks < 0)
    fail("estimator.n_blocks and num_mid_blocks must not be negative");
  if (act_fn != "gelu")
    fail("estimator.act_fn '", act_fn, "' is not supported (CosyVoice2 uses gelu)");
  if (static_chunk_size < 0) fail("estimator.static_chunk_size must not be negative");
}

ConfigFields CfmConfig::fields() const {
  return {{"in_channels", str(in_channels)}, {"spk_emb_dim", str(spk_emb_dim)},
          {"sigma_min", str(sigma_min)},     {"solver", solver},
          {"t_scheduler", t_scheduler},      {"inference_cfg_rate", str(inference_cfg_rate)}};
}

void CfmConfig::validate() const {
  positive("decoder.spk_emb_dim", spk_emb_dim);
  if (n_spks != 1) fail("decoder.n_spks must be 1");
  if (solver != "euler")
    fail("decoder.cfm_params.solver '", solver, "' is not supported (expected euler)");
  if (t_scheduler != "cosine" && t_scheduler != "linear")
    fail("decoder.cfm_params.t_scheduler '", t_scheduler, "' is not supported");
  if (!(inference_cfg_rate >= 0))
    fail("decoder.cfm_params.inference_cfg_rate must not be negative");
}

ConfigFields DitConfig::fields() const {
  return {{"dim", str(dim)},
          {"depth", str(depth)},
          {"heads", str(heads)},
          {"dim_head", str(dim_head)},
          {"ff_mult", str(ff_mult)},
          {"mel_dim", str(mel_dim)},
          {"mu_dim", str(mu_dim)},
          {"spk_dim", str(spk_dim)},
          {"out_channels", str(out_channels)},
          {"static_chunk_size", str(static_chunk_size)},
          {"num_decoding_left_chunks", str(num_decoding_left_chunks)}};
}

void DitConfig::validate() const {
  positive("estimator.dim", dim);
  positive("estimator.depth", depth);
  positive("estimator.heads", heads);
  positive("estimator.dim_head", dim_head);
  positive("estimator.ff_mult", ff_mult);
  positive("estimator.mel_dim", mel_dim);
  positive("estimator.mu_dim", mu_dim);
  positive("estimator.spk_dim", spk_dim);
  positive("estimator.out_channels", out_channels);
  if (dim_head % 2 != 0) fail("estimator.dim_head must be even (rotary pairs)");
  if (dim % kConvPosGroups != 0)
    fail("estimator.dim (", dim, ") must be divisible by the position embedding's ", kConvPosGroups,
         " groups");
  if (static_chunk_size < 0) fail("estimator.static_chunk_size must not be negative");
}

ConfigFields PreLookaheadConfig::fields() const {
  return {{"in_channels", str(in_channels)},
          {"channels", str(channels)},
          {"pre_lookahead_len", str(pre_lookahead_len)}};
}

void PreLookaheadConfig::validate() const {
  positive("flow.pre_lookahead_layer.in_channels", in_channels);
  positive("flow.pre_lookahead_layer.channels", channels);
  positive("flow.pre_lookahead_layer.pre_lookahead_len", pre_lookahead_len);
}

ConfigFields FlowConfig::fields() const {
  ConfigFields f = {{"class", class_name},
                    {"input_size", str(input_size)},
                    {"output_size", str(output_size)},
                    {"spk_embed_dim", str(spk_embed_dim)},
                    {"vocab_size", str(vocab_size)},
                    {"input_frame_rate", str(input_frame_rate)},
                    {"token_mel_ratio", str(token_mel_ratio)},
                    {"pre_lookahead_len", str(pre_lookahead_len)}};
  const bool dit = family == ModelFamily::CosyVoice3;
  if (dit) {
    f.emplace_back("pre_lookahead_layer",
                   fields_to_string("PreLookaheadLayer", pre_lookahead.fields()));
  } else {
    f.emplace_back("encoder", fields_to_string("UpsampleConformerEncoder", encoder.fields()));
  }
  f.emplace_back("decoder", fields_to_string("CausalConditionalCFM", decoder.fields()));
  f.emplace_back("estimator",
                 dit ? fields_to_string("DiT", decoder.dit.fields())
                     : fields_to_string("CausalConditionalDecoder", decoder.estimator.fields()));
  return f;
}

void FlowConfig::validate() const {
  positive("flow.input_size", input_size);
  positive("flow.output_size", output_size);
  positive("flow.spk_embed_dim", spk_embed_dim);
  positive("flow.vocab_size", vocab_size);
  positive("flow.token_mel_ratio", token_mel_ratio);
  if (pre_lookahead_len < 0) fail("flow.pre_lookahead_len must not be negative");
  if (output_type != "mel") fail("flow.output_type '", output_type, "' is not supported");
  decoder.validate();
  if (decoder.spk_emb_dim != output_size)
    fail("flow.decoder.spk_emb_dim (", decoder.spk_emb_dim, ") must equal flow.output_size (",
         output_size, ")");
  if (family == ModelFamily::CosyVoice3) {
    validate_dit();
    return;
  }
  encoder.validate();
  decoder.estimator.validate();
  if (encoder.input_size != input_size)
    fail("flow.encoder.input_size (", encoder.input_size, ") must equal flow.input_size (",
         input_size, ")");
  if (token_mel_ratio != encoder.upsample_stride)
    fail("flow.token_mel_ratio must equal the encoder's ×2 upsampling");
  const auto& est = decoder.estimator;
  if (est.out_channels != output_size)
    fail("estimator.out_channels (", est.out_channels, ") must equal flow.output_size (",
         output_size, ")");
  // The estimator sees x, mu, the speaker vector and the prompt condition stacked.
  if (est.in_channels != 3 * output_size + decoder.spk_emb_dim) {
    fail("estimator.in_channels (", est.in_channels,
         ") must be 3 × output_size + spk_emb_dim = ", 3 * output_size + decoder.spk_emb_dim);
  }
}

void FlowConfig::validate_dit() const {
  pre_lookahead.validate();
  const DitConfig& d = decoder.dit;
  d.validate();
  if (pre_lookahead.in_channels != input_size)
    fail("flow.pre_lookahead_layer.in_channels (", pre_lookahead.in_channels,
         ") must equal flow.input_size (", input_size, ")");
  if (pre_lookahead.pre_lookahead_len != pre_lookahead_len)
    fail("flow.pre_lookahead_layer.pre_lookahead_len must equal flow.pre_lookahead_len");
  // The token embedding goes straight into the estimator as mu (no encoder, no projection).
  if (input_size != output_size || d.mu_dim != input_size)
    fail("flow.input_size (", input_size, "), flow.output_size (", output_size,
         ") and estimator.mu_dim (", d.mu_dim, ") must be equal in a DiT flow");
  if (d.mel_dim != output_size || d.out_channels != output_size)
    fail("estimator.mel_dim and out_channels must equal flow.output_size (", output_size, ")");
  if (d.spk_dim != decoder.spk_emb_dim)
    fail("estimator.spk_dim (", d.spk_dim, ") must equal decoder.spk_emb_dim (",
         decoder.spk_emb_dim, ")");
  if (token_mel_ratio != 2) fail("flow.token_mel_ratio must be 2 (the DiT flow repeats ×2)");
}

int64_t HiftConfig::samples_per_frame() const {
  int64_t n = hop_len;
  for (int64_t r : upsample_rates) n *= r;
  return n;
}

ConfigFields HiftConfig::fields() const {
  return {{"class", class_name},
          {"in_channels", str(in_channels)},
          {"base_channels", str(base_channels)},
          {"nb_harmonics", str(nb_harmonics)},
          {"sampling_rate", str(sampling_rate)},
          {"nsf_alpha", str(nsf_alpha)},
          {"nsf_sigma", str(nsf_sigma)},
          {"nsf_voiced_threshold", str(nsf_voiced_threshold)},
          {"upsample_rates", str(upsample_rates)},
          {"upsample_kernel_sizes", str(upsample_kernel_sizes)},
          {"istft", cat("(n_fft=", n_fft, ", hop_len=", hop_len, ")")},
          {"resblock_kernel_sizes", str(resblock_kernel_sizes)},
          {"resblock_dilation_sizes", str(resblock_dilation_sizes)},
          {"source_resblock_kernel_sizes", str(source_resblock_kernel_sizes)},
          {"source_resblock_dilation_sizes", str(source_resblock_dilation_sizes)},
          {"lrelu_slope", str(lrelu_slope)},
          {"audio_limit", str(audio_limit)},
          {"causal", str(causal)},
          {"conv_pre_look_right", str(conv_pre_look_right)},
          {"f0_predictor",
           cat(f0_predictor.causal ? "CausalConvRNNF0Predictor" : "ConvRNNF0Predictor",
               "(num_class=", f0_predictor.num_class, ", in_channels=", f0_predictor.in_channels,
               ", cond_channels=", f0_predictor.cond_channels, ")")},
          {"samples_per_frame", str(samples_per_frame())}};
}

void HiftConfig::validate() const {
  positive("hift.in_channels", in_channels);
  positive("hift.base_channels", base_channels);
  positive("hift.nb_harmonics", nb_harmonics);
  positive("hift.sampling_rate", sampling_rate);
  positive("hift.istft_params.n_fft", n_fft);
  positive("hift.istft_params.hop_len", hop_len);
  if (n_fft % 2 != 0) fail("hift.istft_params.n_fft must be even");
  if (upsample_rates.empty() || upsample_rates.size() != upsample_kernel_sizes.size()) {
    fail("hift.upsample_rates and upsample_kernel_sizes must be non-empty and of equal length");
  }
  for (size_t i = 0; i < upsample_rates.size(); ++i) {
    positive("hift.upsample_rates[i]", upsample_rates[i]);
    if (upsample_kernel_sizes[i] < upsample_rates[i])
      fail("hift.upsample_kernel_sizes[", i, "] is smaller than its rate");
  }
  if (base_channels % (int64_t{1} << upsample_rates.size()) != 0) {
    fail("hift.base_channels must be divisible by 2^", upsample_rates.size());
  }
  if (resblock_kernel_sizes.empty() ||
      resblock_kernel_sizes.size() != resblock_dilation_sizes.size()) {
    fail(
        "hift.resblock_kernel_sizes and resblock_dilation_sizes must be non-empty and of equal "
        "length");
  }
  if (source_resblock_kernel_sizes.size() != upsample_rates.size() ||
      source_resblock_dilation_sizes.size() != upsample_rates.size()) {
    fail("hift.source_resblock_kernel_sizes/dilation_sizes need one entry per upsampling stage");
  }
  for (const auto* sizes : {&resblock_kernel_sizes, &source_resblock_kernel_sizes}) {
    for (int64_t k : *sizes) positive("hift resblock kernel size", k);
  }
  for (const auto* dil : {&resblock_dilation_sizes, &source_resblock_dilation_sizes}) {
    for (const auto& d : *dil) {
      if (d.empty()) fail("hift resblock dilation lists must not be empty");
      for (int64_t x : d) positive("hift resblock dilation", x);
    }
  }
  positive("hift.f0_predictor.cond_channels", f0_predictor.cond_channels);
  if (f0_predictor.in_channels != in_channels)
    fail("hift.f0_predictor.in_channels must equal hift.in_channels");
  if (f0_predictor.num_class != 1) fail("hift.f0_predictor.num_class must be 1");
  if (!(audio_limit > 0)) fail("hift.audio_limit must be positive");
  if (causal && conv_pre_look_right < 0) fail("hift.conv_pre_look_right must not be negative");
  if (causal != f0_predictor.causal)
    fail("hift: a causal generator needs the causal F0 predictor, and only it");
}

ConfigFields FeatExtractorConfig::fields() const {
  return {{"n_fft", str(n_fft)},
          {"num_mels", str(num_mels)},
          {"sampling_rate", str(sampling_rate)},
          {"hop_size", str(hop_size)},
          {"win_size", str(win_size)},
          {"fmin", std::to_string(fmin)},
          {"fmax", std::to_string(fmax)}};
}

void FeatExtractorConfig::validate() const {
  positive("feat_extractor.n_fft", n_fft);
  positive("feat_extractor.num_mels", num_mels);
  positive("feat_extractor.sampling_rate", sampling_rate);
  positive("feat_extractor.hop_size", hop_size);
  positive("feat_extractor.win_size", win_size);
  if (win_size > n_fft) fail("feat_extractor.win_size ", win_size, " exceeds n_fft ", n_fft);
  if (!(fmin >= 0 && fmax > fmin && fmax <= sampling_rate / 2.0)) {
    fail("feat_extractor: fmin ", fmin, " and fmax ", fmax,
         " must satisfy 0 <= fmin < fmax <= sampling_rate / 2");
  }
}

ConfigFields ModelConfig::fields() const {
  return {{"family", model_family_name(family)},
          {"sample_rate", str(sample_rate)},
          {"token_frame_rate", str(token_frame_rate)},
          {"token_mel_ratio", str(token_mel_ratio)},
          {"chunk_size", str(chunk_size)}};
}

void ModelConfig::validate() const {
  positive("sample_rate", sample_rate);
  positive("token_frame_rate", token_frame_rate);
  positive("chunk_size", chunk_size);
  llm.validate();
  flow.validate();
  hift.validate();
  if (llm.family != family || flow.family != family ||
      hift.causal != (family == ModelFamily::CosyVoice3))
    fail("the llm, flow and hift classes are not all ", model_family_name(family), "'s");
  if (flow.output_size != hift.in_channels) {
    fail("flow emits ", flow.output_size, " mel bins but hift.in_channels is ", hift.in_channels);
  }
  if (hift.sampling_rate != sample_rate)
    fail("hift.sampling_rate (", hift.sampling_rate, ") differs from sample_rate (", sample_rate,
         ")");
  if (flow.vocab_size != llm.speech_token_size) {
    fail("flow.vocab_size (", flow.vocab_size, ") differs from llm.speech_token_size (",
         llm.speech_token_size, ")");
  }
  // 25 Hz tokens × token_mel_ratio mel frames × samples per frame must give the sample rate.
  if (token_frame_rate * token_mel_ratio * hift.samples_per_frame() != sample_rate) {
    fail("token_frame_rate × token_mel_ratio × hift samples per frame (", token_frame_rate, " × ",
         token_mel_ratio, " × ", hift.samples_per_frame(), ") does not equal sample_rate ",
         sample_rate);
  }
}

int64_t causal_hift_noise_offset(const ModelConfig& m) {
  const FlowConfig& f = m.flow;
  const F0PredictorConfig& p = m.hift.f0_predictor;
  const int64_t cfm_noise = CfmConfig::kNoiseChannels * CfmConfig::kNoiseFrames;  // its randn
  const int64_t embedding = f.vocab_size * f.input_size;  // normal_: one output per value
  const int64_t speaker = f.output_size * f.spk_embed_dim + f.output_size;
  // Kaiming-uniform weights and uniform biases: one output per value. First conv k = 4,
  // then 4 of k = 3, then the classifier.
  const int64_t f0 = p.cond_channels * p.in_channels * 4 + p.cond_channels +
                     4 * (p.cond_channels * p.cond_channels * 3 + p.cond_channels) +
                     p.num_class * p.cond_channels + p.num_class;
  return cfm_noise + embedding + speaker + f0;
}

}  // namespace cosy
