// Reading a model's yaml and Qwen config.json into the typed configs of model/config.h.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/hyperpyyaml.h"
#include "model/config.h"

namespace cosy {
namespace {

bool has_class(const yaml::Node& n, std::string_view class_suffix) {
  const std::string target = n.tag_target();
  std::string suffix = ".";
  suffix += class_suffix;
  return n.tag_kind() == "!new" && target.size() >= suffix.size() &&
         target.compare(target.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The class a tagged node instantiates must be the one the family uses.
std::string expect_class(const yaml::Node& n, std::string_view class_suffix, ModelFamily family) {
  if (!has_class(n, class_suffix)) {
    fail(n.where(), " must be '!new:...", class_suffix, "' (", model_family_name(family),
         "), found '", n.tag.empty() ? "untagged" : n.tag, "'");
  }
  return n.tag_target();
}

template <typename T>
T opt(const yaml::Node& parent, const char* key, T fallback, T (yaml::Node::*get)() const) {
  const yaml::Node* n = parent.find(key);
  return n == nullptr || n->is_null() ? fallback : (n->*get)();
}

FeatExtractorConfig parse_feat_extractor(const yaml::Node& fe, int64_t sample_rate) {
  FeatExtractorConfig f;
  f.n_fft = opt(fe, "n_fft", f.n_fft, &yaml::Node::as_int);
  f.num_mels = opt(fe, "num_mels", f.num_mels, &yaml::Node::as_int);
  f.sampling_rate = opt(fe, "sampling_rate", sample_rate, &yaml::Node::as_int);
  f.hop_size = opt(fe, "hop_size", f.hop_size, &yaml::Node::as_int);
  f.win_size = opt(fe, "win_size", f.win_size, &yaml::Node::as_int);
  f.fmin = opt(fe, "fmin", f.fmin, &yaml::Node::as_double);
  // librosa's mel filters read fmax None as half the sampling rate (CosyVoice3's yaml).
  const yaml::Node* fmax = fe.find("fmax");
  f.fmax = fmax == nullptr   ? f.fmax
           : fmax->is_null() ? static_cast<double>(f.sampling_rate) / 2.0
                             : fmax->as_double();
  if (const yaml::Node* center = fe.find("center"); center != nullptr && center->as_bool()) {
    fail("feat_extractor: center: True is not supported (CosyVoice2 and 3 use False)");
  }
  f.validate();
  return f;
}

LlmConfig parse_llm(const yaml::Node& llm, const QwenConfig& qwen, ModelFamily family) {
  LlmConfig c;
  c.family = family;
  c.class_name =
      expect_class(llm, family == ModelFamily::CosyVoice3 ? "CosyVoice3LM" : "Qwen2LM", family);
  c.llm_input_size = llm.at("llm_input_size").as_int();
  c.llm_output_size = llm.at("llm_output_size").as_int();
  c.speech_token_size = llm.at("speech_token_size").as_int();
  c.mix_ratio = opt(llm, "mix_ratio", std::vector<int64_t>{5, 15}, &yaml::Node::as_int_list);
  if (const yaml::Node* s = llm.find("sampling")) {
    if (s->tag_target().find("ras_sampling") == std::string::npos) {
      fail(s->where(), ": only ras_sampling is supported, found '", s->tag, "'");
    }
    c.sampling.top_p = opt(*s, "top_p", 0.8, &yaml::Node::as_double);
    c.sampling.top_k = opt(*s, "top_k", int64_t{25}, &yaml::Node::as_int);
    c.sampling.win_size = opt(*s, "win_size", int64_t{10}, &yaml::Node::as_int);
    c.sampling.tau_r = opt(*s, "tau_r", 0.1, &yaml::Node::as_double);
  }
  c.qwen = qwen;
  return c;
}

void parse_cfm(const yaml::Node& dec, CfmConfig& c, ModelFamily family) {
  expect_class(dec, "CausalConditionalCFM", family);
  c.in_channels = opt(dec, "in_channels", int64_t{240}, &yaml::Node::as_int);
  c.n_spks = opt(dec, "n_spks", int64_t{1}, &yaml::Node::as_int);
  c.spk_emb_dim = dec.at("spk_emb_dim").as_int();
  const yaml::Node& cfm_node = dec.at("cfm_params");
  const yaml::Node& cfm = cfm_node.find("content") != nullptr ? cfm_node.at("content") : cfm_node;
  c.sigma_min = opt(cfm, "sigma_min", 1e-6, &yaml::Node::as_double);
  c.solver = opt(cfm, "solver", std::string("euler"), &yaml::Node::as_string);
  c.t_scheduler = opt(cfm, "t_scheduler", std::string("cosine"), &yaml::Node::as_string);
  c.training_cfg_rate = opt(cfm, "training_cfg_rate", 0.2, &yaml::Node::as_double);
  c.inference_cfg_rate = opt(cfm, "inference_cfg_rate", 0.7, &yaml::Node::as_double);
}

// CosyVoice2: UpsampleConformerEncoder, then the UNet estimator.
void parse_conformer_flow(const yaml::Node& flow, FlowConfig& f) {
  const ModelFamily family = ModelFamily::CosyVoice2;
  const yaml::Node& enc = flow.at("encoder");
  expect_class(enc, "UpsampleConformerEncoder", family);
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
  parse_cfm(dec, f.decoder, family);
  const yaml::Node& est = dec.at("estimator");
  expect_class(est, "CausalConditionalDecoder", family);
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
}

// CosyVoice3: PreLookaheadLayer, then the DiT estimator.
void parse_dit_flow(const yaml::Node& flow, FlowConfig& f) {
  const ModelFamily family = ModelFamily::CosyVoice3;
  const yaml::Node& la = flow.at("pre_lookahead_layer");
  expect_class(la, "PreLookaheadLayer", family);
  f.pre_lookahead.in_channels = la.at("in_channels").as_int();
  f.pre_lookahead.channels = la.at("channels").as_int();
  f.pre_lookahead.pre_lookahead_len =
      opt(la, "pre_lookahead_len", f.pre_lookahead_len, &yaml::Node::as_int);

  const yaml::Node& dec = flow.at("decoder");
  parse_cfm(dec, f.decoder, family);
  const yaml::Node& est = dec.at("estimator");
  expect_class(est, "DiT", family);
  DitConfig& d = f.decoder.dit;
  d.dim = est.at("dim").as_int();
  d.depth = est.at("depth").as_int();
  d.heads = opt(est, "heads", int64_t{8}, &yaml::Node::as_int);
  d.dim_head = opt(est, "dim_head", int64_t{64}, &yaml::Node::as_int);
  d.ff_mult = opt(est, "ff_mult", int64_t{4}, &yaml::Node::as_int);
  d.mel_dim = opt(est, "mel_dim", int64_t{80}, &yaml::Node::as_int);
  d.mu_dim = opt(est, "mu_dim", d.mel_dim, &yaml::Node::as_int);
  d.spk_dim = opt(est, "spk_dim", int64_t{80}, &yaml::Node::as_int);
  d.out_channels = opt(est, "out_channels", d.mel_dim, &yaml::Node::as_int);
  d.static_chunk_size = opt(est, "static_chunk_size", int64_t{50}, &yaml::Node::as_int);
  d.num_decoding_left_chunks =
      opt(est, "num_decoding_left_chunks", int64_t{-1}, &yaml::Node::as_int);
  if (opt(est, "long_skip_connection", false, &yaml::Node::as_bool))
    fail(est.where(), ": long_skip_connection is not supported (CosyVoice3 leaves it off)");
}

FlowConfig parse_flow(const yaml::Node& flow, ModelFamily family) {
  FlowConfig f;
  f.family = family;
  f.class_name = expect_class(
      flow,
      family == ModelFamily::CosyVoice3 ? "CausalMaskedDiffWithDiT" : "CausalMaskedDiffWithXvec",
      family);
  f.input_size = flow.at("input_size").as_int();
  f.output_size = flow.at("output_size").as_int();
  f.spk_embed_dim = flow.at("spk_embed_dim").as_int();
  f.vocab_size = flow.at("vocab_size").as_int();
  f.input_frame_rate = opt(flow, "input_frame_rate", int64_t{25}, &yaml::Node::as_int);
  f.token_mel_ratio = opt(flow, "token_mel_ratio", int64_t{2}, &yaml::Node::as_int);
  f.pre_lookahead_len = opt(flow, "pre_lookahead_len", int64_t{3}, &yaml::Node::as_int);
  f.output_type = opt(flow, "output_type", std::string("mel"), &yaml::Node::as_string);
  if (family == ModelFamily::CosyVoice3) {
    parse_dit_flow(flow, f);
  } else {
    parse_conformer_flow(flow, f);
  }
  return f;
}

HiftConfig parse_hift(const yaml::Node& hift, ModelFamily family) {
  HiftConfig h;
  h.causal = family == ModelFamily::CosyVoice3;
  h.class_name = expect_class(hift, h.causal ? "CausalHiFTGenerator" : "HiFTGenerator", family);
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
  if (h.causal)
    h.conv_pre_look_right = opt(hift, "conv_pre_look_right", int64_t{4}, &yaml::Node::as_int);
  const yaml::Node& f0 = hift.at("f0_predictor");
  expect_class(f0, h.causal ? "CausalConvRNNF0Predictor" : "ConvRNNF0Predictor", family);
  h.f0_predictor.causal = h.causal;
  h.f0_predictor.num_class = opt(f0, "num_class", int64_t{1}, &yaml::Node::as_int);
  h.f0_predictor.in_channels = opt(f0, "in_channels", int64_t{80}, &yaml::Node::as_int);
  h.f0_predictor.cond_channels = f0.at("cond_channels").as_int();
  return h;
}

}  // namespace

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

ModelConfig parse_model_config(const yaml::Document& doc, const QwenConfig& qwen,
                               ModelFamily family) {
  return with_context(doc.label(), [&] {
    const yaml::Node& root = doc.root();
    ModelConfig m;
    m.family = family;
    m.sample_rate = root.at("sample_rate").as_int();
    m.token_frame_rate = opt(root, "token_frame_rate", int64_t{25}, &yaml::Node::as_int);
    m.token_mel_ratio = opt(root, "token_mel_ratio", int64_t{2}, &yaml::Node::as_int);
    m.chunk_size = opt(root, "chunk_size", int64_t{25}, &yaml::Node::as_int);
    if (const yaml::Node* fe = root.find("feat_extractor"))
      m.feat_extractor = parse_feat_extractor(*fe, m.sample_rate);
    m.llm = parse_llm(root.at("llm"), qwen, family);
    m.flow = parse_flow(root.at("flow"), family);
    m.hift = parse_hift(root.at("hift"), family);
    m.validate();
    return m;
  });
}

}  // namespace cosy
