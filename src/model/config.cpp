#include "model/config.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/hyperpyyaml.h"

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

// The class a tagged node instantiates must be the one CosyVoice2 uses.
std::string expect_class(const yaml::Node& n, std::string_view class_suffix) {
  const std::string target = n.tag_target();
  std::string suffix = ".";
  suffix += class_suffix;
  if (n.tag_kind() != "!new" || target.size() < suffix.size() ||
      target.compare(target.size() - suffix.size(), suffix.size(), suffix) != 0) {
    fail(n.where(), " must be '!new:...", class_suffix, "' (CosyVoice2), found '",
         n.tag.empty() ? "untagged" : n.tag, "'");
  }
  return target;
}

template <typename T>
T opt(const yaml::Node& parent, const char* key, T fallback, T (yaml::Node::*get)() const) {
  const yaml::Node* n = parent.find(key);
  return n == nullptr || n->is_null() ? fallback : (n->*get)();
}

}  // namespace

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
  estimator.validate();
}

ConfigFields FlowConfig::fields() const {
  return {{"class", class_name},
          {"input_size", str(input_size)},
          {"output_size", str(output_size)},
          {"spk_embed_dim", str(spk_embed_dim)},
          {"vocab_size", str(vocab_size)},
          {"input_frame_rate", str(input_frame_rate)},
          {"token_mel_ratio", str(token_mel_ratio)},
          {"pre_lookahead_len", str(pre_lookahead_len)},
          {"encoder", fields_to_string("UpsampleConformerEncoder", encoder.fields())},
          {"decoder", fields_to_string("CausalConditionalCFM", decoder.fields())},
          {"estimator", fields_to_string("CausalConditionalDecoder", decoder.estimator.fields())}};
}

void FlowConfig::validate() const {
  positive("flow.input_size", input_size);
  positive("flow.output_size", output_size);
  positive("flow.spk_embed_dim", spk_embed_dim);
  positive("flow.vocab_size", vocab_size);
  positive("flow.token_mel_ratio", token_mel_ratio);
  if (pre_lookahead_len < 0) fail("flow.pre_lookahead_len must not be negative");
  if (output_type != "mel") fail("flow.output_type '", output_type, "' is not supported");
  encoder.validate();
  decoder.validate();
  if (encoder.input_size != input_size)
    fail("flow.encoder.input_size (", encoder.input_size, ") must equal flow.input_size (",
         input_size, ")");
  if (token_mel_ratio != encoder.upsample_stride)
    fail("flow.token_mel_ratio must equal the encoder's ×2 upsampling");
  if (decoder.spk_emb_dim != output_size)
    fail("flow.decoder.spk_emb_dim (", decoder.spk_emb_dim, ") must equal flow.output_size (",
         output_size, ")");
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
          {"f0_predictor", cat("ConvRNNF0Predictor(num_class=", f0_predictor.num_class,
                               ", in_channels=", f0_predictor.in_channels,
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
  return {{"sample_rate", str(sample_rate)},
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
  if (flow.decoder.estimator.out_channels != hift.in_channels) {
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

QwenConfig parse_qwen_config(const std::string& json_text, const std::string& label) {
  const auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(label, ": not a JSON object");
  auto get_int = [&](const char* key) -> int64_t {
    if (!j.contains(key) || !j[key].is_number_integer())
      fail(label, ": '", key, "' must be an integer");
    return j[key].get<int64_t>();
  };
  auto get_num = [&](const char* key, double fallback) -> double {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number()) fail(label, ": '", key, "' must be a number");
    return j[key].get<double>();
  };
  QwenConfig q;
  if (j.contains("model_type") && j["model_type"] != "qwen2")
    fail(label, ": model_type must be 'qwen2'");
  q.hidden_size = get_int("hidden_size");
  q.intermediate_size = get_int("intermediate_size");
  q.num_hidden_layers = get_int("num_hidden_layers");
  q.num_attention_heads = get_int("num_attention_heads");
  q.num_key_value_heads =
      j.contains("num_key_value_heads") ? get_int("num_key_value_heads") : q.num_attention_heads;
  q.vocab_size = get_int("vocab_size");
  q.max_position_embeddings =
      j.contains("max_position_embeddings") ? get_int("max_position_embeddings") : 32768;
  q.rms_norm_eps = get_num("rms_norm_eps", 1e-6);
  q.rope_theta = get_num("rope_theta", 10000.0);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean())
      fail(label, ": 'tie_word_embeddings' must be true or false");
    q.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("hidden_act")) {
    if (!j["hidden_act"].is_string()) fail(label, ": 'hidden_act' must be a string");
    q.hidden_act = j["hidden_act"].get<std::string>();
  }
  with_context(label, [&] { q.validate(); });
  return q;
}

ModelConfig parse_model_config(const yaml::Document& doc, const QwenConfig& qwen) {
  return with_context(doc.label(), [&] {
    const yaml::Node& root = doc.root();
    ModelConfig m;
    m.sample_rate = root.at("sample_rate").as_int();
    m.token_frame_rate = opt(root, "token_frame_rate", int64_t{25}, &yaml::Node::as_int);
    m.token_mel_ratio = opt(root, "token_mel_ratio", int64_t{2}, &yaml::Node::as_int);
    m.chunk_size = opt(root, "chunk_size", int64_t{25}, &yaml::Node::as_int);

    if (const yaml::Node* fe = root.find("feat_extractor")) {
      FeatExtractorConfig& f = m.feat_extractor;
      f.n_fft = opt(*fe, "n_fft", f.n_fft, &yaml::Node::as_int);
      f.num_mels = opt(*fe, "num_mels", f.num_mels, &yaml::Node::as_int);
      f.sampling_rate = opt(*fe, "sampling_rate", m.sample_rate, &yaml::Node::as_int);
      f.hop_size = opt(*fe, "hop_size", f.hop_size, &yaml::Node::as_int);
      f.win_size = opt(*fe, "win_size", f.win_size, &yaml::Node::as_int);
      f.fmin = opt(*fe, "fmin", f.fmin, &yaml::Node::as_double);
      f.fmax = opt(*fe, "fmax", f.fmax, &yaml::Node::as_double);
      if (const yaml::Node* center = fe->find("center"); center != nullptr && center->as_bool()) {
        fail("feat_extractor: center: True is not supported (CosyVoice2 uses False)");
      }
      f.validate();
    }

    const yaml::Node& llm = root.at("llm");
    m.llm.class_name = expect_class(llm, "Qwen2LM");
    m.llm.llm_input_size = llm.at("llm_input_size").as_int();
    m.llm.llm_output_size = llm.at("llm_output_size").as_int();
    m.llm.speech_token_size = llm.at("speech_token_size").as_int();
    m.llm.mix_ratio = opt(llm, "mix_ratio", std::vector<int64_t>{5, 15}, &yaml::Node::as_int_list);
    if (const yaml::Node* s = llm.find("sampling")) {
      if (s->tag_target().find("ras_sampling") == std::string::npos) {
        fail(s->where(), ": only ras_sampling is supported, found '", s->tag, "'");
      }
      m.llm.sampling.top_p = opt(*s, "top_p", 0.8, &yaml::Node::as_double);
      m.llm.sampling.top_k = opt(*s, "top_k", int64_t{25}, &yaml::Node::as_int);
      m.llm.sampling.win_size = opt(*s, "win_size", int64_t{10}, &yaml::Node::as_int);
      m.llm.sampling.tau_r = opt(*s, "tau_r", 0.1, &yaml::Node::as_double);
    }
    m.llm.qwen = qwen;

    const yaml::Node& flow = root.at("flow");
    auto& f = m.flow;
    f.class_name = expect_class(flow, "CausalMaskedDiffWithXvec");
    f.input_size = flow.at("input_size").as_int();
    f.output_size = flow.at("output_size").as_int();
    f.spk_embed_dim = flow.at("spk_embed_dim").as_int();
    f.vocab_size = flow.at("vocab_size").as_int();
    f.input_frame_rate = opt(flow, "input_frame_rate", int64_t{25}, &yaml::Node::as_int);
    f.token_mel_ratio = opt(flow, "token_mel_ratio", int64_t{2}, &yaml::Node::as_int);
    f.pre_lookahead_len = opt(flow, "pre_lookahead_len", int64_t{3}, &yaml::Node::as_int);
    f.output_type = opt(flow, "output_type", std::string("mel"), &yaml::Node::as_string);

    const yaml::Node& enc = flow.at("encoder");
    expect_class(enc, "UpsampleConformerEncoder");
    f.encoder.input_size = enc.at("input_size").as_int();
    f.encoder.output_size = enc.at("output_size").as_int();
    f.encoder.attention_heads = enc.at("attention_heads").as_int();
    f.encoder.linear_units = enc.at("linear_units").as_int();
    f.encoder.num_blocks = enc.at("num_blocks").as_int();
    f.encoder.static_chunk_size = opt(enc, "static_chunk_size", int64_t{0}, &yaml::Node::as_int);
    f.encoder.normalize_before = opt(enc, "normalize_before", true, &yaml::Node::as_bool);
    f.encoder.use_cnn_module = opt(enc, "use_cnn_module", false, &yaml::Node::as_bool);
    f.encoder.macaron_style = opt(enc, "macaron_style", false, &yaml::Node::as_bool);
    f.encoder.use_dynamic_chunk = opt(enc, "use_dynamic_chunk", false, &yaml::Node::as_bool);
    f.encoder.input_layer = opt(enc, "input_layer", std::string("linear"), &yaml::Node::as_string);
    f.encoder.pos_enc_layer_type =
        opt(enc, "pos_enc_layer_type", std::string("rel_pos_espnet"), &yaml::Node::as_string);
    f.encoder.selfattention_layer_type =
        opt(enc, "selfattention_layer_type", std::string("rel_selfattn"), &yaml::Node::as_string);

    const yaml::Node& dec = flow.at("decoder");
    expect_class(dec, "CausalConditionalCFM");
    f.decoder.in_channels = opt(dec, "in_channels", int64_t{240}, &yaml::Node::as_int);
    f.decoder.n_spks = opt(dec, "n_spks", int64_t{1}, &yaml::Node::as_int);
    f.decoder.spk_emb_dim = dec.at("spk_emb_dim").as_int();
    const yaml::Node& cfm_node = dec.at("cfm_params");
    const yaml::Node& cfm = cfm_node.find("content") != nullptr ? cfm_node.at("content") : cfm_node;
    f.decoder.sigma_min = opt(cfm, "sigma_min", 1e-6, &yaml::Node::as_double);
    f.decoder.solver = opt(cfm, "solver", std::string("euler"), &yaml::Node::as_string);
    f.decoder.t_scheduler = opt(cfm, "t_scheduler", std::string("cosine"), &yaml::Node::as_string);
    f.decoder.training_cfg_rate = opt(cfm, "training_cfg_rate", 0.2, &yaml::Node::as_double);
    f.decoder.inference_cfg_rate = opt(cfm, "inference_cfg_rate", 0.7, &yaml::Node::as_double);

    const yaml::Node& est = dec.at("estimator");
    expect_class(est, "CausalConditionalDecoder");
    auto& e = f.decoder.estimator;
    e.in_channels = est.at("in_channels").as_int();
    e.out_channels = est.at("out_channels").as_int();
    e.channels = est.at("channels").as_int_list();
    e.attention_head_dim = est.at("attention_head_dim").as_int();
    e.n_blocks = est.at("n_blocks").as_int();
    e.num_mid_blocks = est.at("num_mid_blocks").as_int();
    e.num_heads = est.at("num_heads").as_int();
    e.act_fn = opt(est, "act_fn", std::string("gelu"), &yaml::Node::as_string);
    e.static_chunk_size = opt(est, "static_chunk_size", int64_t{0}, &yaml::Node::as_int);
    e.num_decoding_left_chunks =
        opt(est, "num_decoding_left_chunks", int64_t{-1}, &yaml::Node::as_int);

    const yaml::Node& hift = root.at("hift");
    auto& h = m.hift;
    h.class_name = expect_class(hift, "HiFTGenerator");
    h.in_channels = hift.at("in_channels").as_int();
    h.base_channels = hift.at("base_channels").as_int();
    h.nb_harmonics = hift.at("nb_harmonics").as_int();
    h.sampling_rate = hift.at("sampling_rate").as_int();
    h.nsf_alpha = opt(hift, "nsf_alpha", 0.1, &yaml::Node::as_double);
    h.nsf_sigma = opt(hift, "nsf_sigma", 0.003, &yaml::Node::as_double);
    h.nsf_voiced_threshold = opt(hift, "nsf_voiced_threshold", 10.0, &yaml::Node::as_double);
    h.upsample_rates = hift.at("upsample_rates").as_int_list();
    h.upsample_kernel_sizes = hift.at("upsample_kernel_sizes").as_int_list();
    const yaml::Node& istft = hift.at("istft_params");
    h.n_fft = istft.at("n_fft").as_int();
    h.hop_len = istft.at("hop_len").as_int();
    h.resblock_kernel_sizes = hift.at("resblock_kernel_sizes").as_int_list();
    h.resblock_dilation_sizes = hift.at("resblock_dilation_sizes").as_int_matrix();
    h.source_resblock_kernel_sizes = hift.at("source_resblock_kernel_sizes").as_int_list();
    h.source_resblock_dilation_sizes = hift.at("source_resblock_dilation_sizes").as_int_matrix();
    h.lrelu_slope = opt(hift, "lrelu_slope", 0.1, &yaml::Node::as_double);
    h.audio_limit = opt(hift, "audio_limit", 0.99, &yaml::Node::as_double);
    const yaml::Node& f0 = hift.at("f0_predictor");
    expect_class(f0, "ConvRNNF0Predictor");
    h.f0_predictor.num_class = opt(f0, "num_class", int64_t{1}, &yaml::Node::as_int);
    h.f0_predictor.in_channels = opt(f0, "in_channels", int64_t{80}, &yaml::Node::as_int);
    h.f0_predictor.cond_channels = f0.at("cond_channels").as_int();

    m.validate();
    return m;
  });
}

}  // namespace cosy
