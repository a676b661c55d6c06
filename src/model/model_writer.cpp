#include "model/model_writer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "io/torch_checkpoint.h"
#include "model/model_folder.h"
#include "model/model_writer_cv3.h"
#include "model/param_schema.h"
#include "model/voice/frontend_models.h"
#include "text/bpe_tokenizer.h"
#include "text/starter_tokenizer.h"
#include "text/text_frontend.h"

namespace cosy {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Deterministic uniform(-scale, scale) values, different per tensor name and seed.
Tensor random_uniform(const std::string& name, const Shape& shape, float scale, uint64_t seed) {
  Tensor t = Tensor::zeros(DType::F32, shape);
  float* p = t.mutable_data<float>();
  uint64_t state = hash_name(name, seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float u = static_cast<float>(splitmix64(state) >> 40) * (1.0F / 16777216.0F);  // [0, 1)
    p[i] = (2.0F * u - 1.0F) * scale;
  }
  return t;
}

Tensor filled(const Shape& shape, float value) {
  Tensor t = Tensor::zeros(DType::F32, shape);
  float* p = t.mutable_data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

// A plausible initial value for each kind of parameter, so activations stay bounded.
Tensor init_param(const ParamSpec& spec, uint64_t seed) {
  const std::string& n = spec.name;
  if (spec.shape.size() == 1 && ends_with(n, ".weight")) return filled(spec.shape, 1.0F);  // norms
  if (ends_with(n, ".alpha")) return filled(spec.shape, 1.0F);                             // Snake
  if (ends_with(n, ".bias") || ends_with(n, "pos_bias_u") || ends_with(n, "pos_bias_v")) {
    return random_uniform(n, spec.shape, 0.02F, seed);
  }
  int64_t fan_in = 1;
  for (size_t i = 1; i < spec.shape.size(); ++i) fan_in *= spec.shape[i];
  return random_uniform(n, spec.shape,
                        1.0F / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1))), seed);
}

std::vector<std::pair<std::string, Tensor>> random_state_dict(const std::vector<ParamSpec>& specs,
                                                              uint64_t seed,
                                                              const std::string& tie_from = "",
                                                              const std::string& tie_to = "") {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const ParamSpec& spec : specs) {
    if (spec.optional && spec.name != tie_to) continue;
    if (spec.name == tie_to) {
      auto from =
          std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == tie_from; });
      if (from == out.end()) fail("cannot tie '", tie_to, "' to missing '", tie_from, "'");
      Tensor shared = from->second;  // same storage, as torch ties it
      out.emplace_back(spec.name, std::move(shared));
      continue;
    }
    Tensor w = init_param(spec, seed);
    if (!spec.weight_norm) {
      out.emplace_back(spec.name, w);
      continue;
    }
    // Store as torch.nn.utils.parametrizations.weight_norm does: g = ||v|| per output row.
    const auto names = weight_norm_forms(spec.name)[0];
    Tensor g = Tensor::zeros(DType::F32, {spec.shape[0], 1, 1});
    const int64_t row = w.numel() / spec.shape[0];
    for (int64_t o = 0; o < spec.shape[0]; ++o) {
      double sum = 0;
      for (int64_t i = 0; i < row; ++i)
        sum += double(w.data<float>()[o * row + i]) * w.data<float>()[o * row + i];
      g.mutable_data<float>()[o] = static_cast<float>(std::sqrt(sum));
    }
    out.emplace_back(names.g, g);
    out.emplace_back(names.v, w);
  }
  return out;
}

Tensor int_tensor(const Shape& shape, int64_t modulo, uint64_t seed, const std::string& name) {
  Tensor t = Tensor::zeros(DType::I32, shape);
  uint64_t state = hash_name(name, seed);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.mutable_data<int32_t>()[i] = static_cast<int32_t>(splitmix64(state) % modulo);
  return t;
}

Tensor scalar_len(int64_t n) {
  Tensor t = Tensor::zeros(DType::I32, {1});
  t.mutable_data<int32_t>()[0] = static_cast<int32_t>(n);
  return t;
}

// `prompt_prefix`: ids before the random transcript (CosyVoice3's instruction, ending in
// <|endofprompt|>).
void write_voices(const ModelConfig& c, const std::filesystem::path& path, uint64_t seed,
                  const std::vector<int32_t>& prompt_prefix) {
  // A 3 s prompt (75 tokens at 25 Hz), the length the first-chunk latency target assumes.
  const int64_t token_len = 75, feat_len = token_len * c.token_mel_ratio;
  SaveNode::Entries voice;
  auto add = [&](const std::string& k, Tensor t) {
    voice.push_back({k, SaveNode::tensor(std::move(t))});
  };
  // Prompt ids avoid the top of the vocabulary, where the special tokens live.
  const Tensor transcript =
      int_tensor({1, 12}, std::min<int64_t>(c.llm.qwen.vocab_size, 151643), seed, "prompt_text");
  const auto text_len = static_cast<int64_t>(prompt_prefix.size()) + transcript.numel();
  Tensor text = Tensor::zeros(DType::I32, {1, text_len});
  std::copy(prompt_prefix.begin(), prompt_prefix.end(), text.mutable_data<int32_t>());
  std::copy_n(transcript.data<int32_t>(), transcript.numel(),
              text.mutable_data<int32_t>() + prompt_prefix.size());
  add("prompt_text", std::move(text));
  add("prompt_text_len", scalar_len(text_len));
  Tensor tokens = int_tensor({1, token_len}, c.llm.speech_token_size, seed, "speech_token");
  add("llm_prompt_speech_token", tokens);
  add("llm_prompt_speech_token_len", scalar_len(token_len));
  add("flow_prompt_speech_token", tokens);
  add("flow_prompt_speech_token_len", scalar_len(token_len));
  add("prompt_speech_feat",
      random_uniform("prompt_speech_feat", {1, feat_len, c.flow.output_size}, 4.0F, seed));
  add("prompt_speech_feat_len", scalar_len(feat_len));
  Tensor emb = random_uniform("embedding", {1, c.flow.spk_embed_dim}, 1.0F, seed);
  add("llm_embedding", emb);
  add("flow_embedding", emb);
  SaveNode::Entries root;
  root.push_back({"random_voice", SaveNode::dict(std::move(voice))});
  save_torch_file(path, "spk2info", SaveNode::dict(std::move(root)));
}

std::string num(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  std::string s = o.str();
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"tiny", "cosyvoice2-0.5b", "cosyvoice3-tiny", "cosyvoice3-0.5b"};
}

ModelConfig preset_config(const std::string& preset) {
  if (preset == "cosyvoice3-tiny" || preset == "cosyvoice3-0.5b")
    return cosyvoice3_preset_config(preset == "cosyvoice3-0.5b");
  ModelConfig c;
  c.sample_rate = 24000;
  c.token_frame_rate = 25;
  c.token_mel_ratio = 2;
  c.chunk_size = 25;
  const bool full = preset == "cosyvoice2-0.5b";
  if (!full && preset != "tiny")
    fail("unknown preset '", preset,
         "' (choose tiny, cosyvoice2-0.5b, cosyvoice3-tiny or cosyvoice3-0.5b)");

  QwenConfig& q = c.llm.qwen;
  q.hidden_size = full ? 896 : 64;
  q.intermediate_size = full ? 4864 : 128;
  q.num_hidden_layers = full ? 24 : 2;
  q.num_attention_heads = full ? 14 : 4;
  q.num_key_value_heads = 2;
  q.vocab_size = 151936;  // the real tokenizer's ids fit either way
  q.max_position_embeddings = 32768;
  q.rms_norm_eps = 1e-6;
  q.rope_theta = 1000000.0;
  q.tie_word_embeddings = true;
  c.llm.class_name = "cosyvoice.llm.llm.Qwen2LM";
  c.llm.llm_input_size = q.hidden_size;
  c.llm.llm_output_size = q.hidden_size;
  c.llm.speech_token_size = 6561;
  c.llm.mix_ratio = {5, 15};

  FlowConfig& f = c.flow;
  f.class_name = "cosyvoice.flow.flow.CausalMaskedDiffWithXvec";
  f.input_size = full ? 512 : 64;
  f.output_size = 80;
  f.spk_embed_dim = 192;
  f.vocab_size = 6561;
  f.encoder.input_size = f.input_size;
  f.encoder.output_size = full ? 512 : 64;
  f.encoder.attention_heads = full ? 8 : 4;
  f.encoder.linear_units = full ? 2048 : 128;
  f.encoder.num_blocks = full ? 6 : 2;
  f.encoder.static_chunk_size = c.chunk_size;
  f.encoder.input_layer = "linear";
  f.encoder.pos_enc_layer_type = "rel_pos_espnet";
  f.encoder.selfattention_layer_type = "rel_selfattn";
  f.decoder.in_channels = 240;
  f.decoder.spk_emb_dim = 80;
  auto& e = f.decoder.estimator;
  e.in_channels = 320;
  e.out_channels = 80;
  e.channels = {full ? 256 : 64};
  e.attention_head_dim = full ? 64 : 32;
  e.n_blocks = full ? 4 : 1;
  e.num_mid_blocks = full ? 12 : 2;
  e.num_heads = full ? 8 : 4;
  e.act_fn = "gelu";
  e.static_chunk_size = c.chunk_size * c.token_mel_ratio;
  e.num_decoding_left_chunks = -1;

  HiftConfig& h = c.hift;
  h.class_name = "cosyvoice.hifigan.generator.HiFTGenerator";
  h.in_channels = 80;
  h.base_channels = full ? 512 : 64;
  h.nb_harmonics = 8;
  h.sampling_rate = c.sample_rate;
  h.upsample_rates = {8, 5, 3};
  h.upsample_kernel_sizes = {16, 11, 7};
  h.resblock_kernel_sizes = {3, 7, 11};
  h.resblock_dilation_sizes = {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}};
  h.source_resblock_kernel_sizes = {7, 7, 11};
  h.source_resblock_dilation_sizes = {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}};
  h.f0_predictor = {1, 80, full ? 512 : 32};
  c.validate();
  return c;
}

void write_yaml_preamble(std::ostream& y, const ModelConfig& c, const std::string& file,
                         int64_t left_chunks) {
  y << "# Written by cosyserve make-model: the structure of the official " << file << ".\n"
    << "sample_rate: " << c.sample_rate << "\n"
    << "llm_input_size: " << c.llm.llm_input_size << "\n"
    << "llm_output_size: " << c.llm.llm_output_size << "\n"
    << "spk_embed_dim: " << c.flow.spk_embed_dim << "\n"
    << "qwen_pretrain_path: ''\n"
    << "token_frame_rate: " << c.token_frame_rate << "\n"
    << "token_mel_ratio: " << c.token_mel_ratio << "\n\n"
    << "chunk_size: " << c.chunk_size << "\n"
    << "num_decoding_left_chunks: " << left_chunks << "\n\n";
}

void write_yaml_llm(std::ostream& y, const LlmConfig& l) {
  y << "llm: !new:" << l.class_name << "\n"
    << "    llm_input_size: !ref <llm_input_size>\n"
    << "    llm_output_size: !ref <llm_output_size>\n"
    << "    speech_token_size: " << l.speech_token_size << "\n"
    << "    length_normalized_loss: True\n"
    << "    lsm_weight: 0\n"
    << "    mix_ratio: " << int_list_str(l.mix_ratio) << "\n"
    << "    llm: !new:cosyvoice.llm.llm.Qwen2Encoder\n"
    << "        pretrain_path: !ref <qwen_pretrain_path>\n"
    << "    sampling: !name:cosyvoice.utils.common.ras_sampling\n"
    << "        top_p: " << num(l.sampling.top_p) << "\n"
    << "        top_k: " << l.sampling.top_k << "\n"
    << "        win_size: " << l.sampling.win_size << "\n"
    << "        tau_r: " << num(l.sampling.tau_r) << "\n\n";
}

void write_yaml_cfm(std::ostream& y, const CfmConfig& d) {
  y << "    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM\n"
    << "        in_channels: " << d.in_channels << "\n"
    << "        n_spks: 1\n"
    << "        spk_emb_dim: " << d.spk_emb_dim << "\n"
    << "        cfm_params: !new:omegaconf.DictConfig\n"
    << "            content:\n"
    << "                sigma_min: " << num(d.sigma_min) << "\n"
    << "                solver: '" << d.solver << "'\n"
    << "                t_scheduler: '" << d.t_scheduler << "'\n"
    << "                training_cfg_rate: " << num(d.training_cfg_rate) << "\n"
    << "                inference_cfg_rate: " << num(d.inference_cfg_rate) << "\n"
    << "                reg_loss_type: 'l1'\n";
}

void write_yaml_hift(std::ostream& y, const HiftConfig& h) {
  y << "hift: !new:" << h.class_name << "\n"
    << "    in_channels: " << h.in_channels << "\n"
    << "    base_channels: " << h.base_channels << "\n"
    << "    nb_harmonics: " << h.nb_harmonics << "\n"
    << "    sampling_rate: !ref <sample_rate>\n"
    << "    nsf_alpha: " << num(h.nsf_alpha) << "\n"
    << "    nsf_sigma: " << num(h.nsf_sigma) << "\n"
    << "    nsf_voiced_threshold: " << num(h.nsf_voiced_threshold) << "\n"
    << "    upsample_rates: " << int_list_str(h.upsample_rates) << "\n"
    << "    upsample_kernel_sizes: " << int_list_str(h.upsample_kernel_sizes) << "\n"
    << "    istft_params:\n"
    << "        n_fft: " << h.n_fft << "\n"
    << "        hop_len: " << h.hop_len << "\n"
    << "    resblock_kernel_sizes: " << int_list_str(h.resblock_kernel_sizes) << "\n"
    << "    resblock_dilation_sizes: " << int_matrix_str(h.resblock_dilation_sizes) << "\n"
    << "    source_resblock_kernel_sizes: " << int_list_str(h.source_resblock_kernel_sizes) << "\n"
    << "    source_resblock_dilation_sizes: " << int_matrix_str(h.source_resblock_dilation_sizes)
    << "\n"
    << "    lrelu_slope: " << num(h.lrelu_slope) << "\n"
    << "    audio_limit: " << num(h.audio_limit) << "\n";
  if (h.causal) y << "    conv_pre_look_right: " << h.conv_pre_look_right << "\n";
  y << "    f0_predictor: !new:cosyvoice.hifigan.f0_predictor."
    << (h.f0_predictor.causal ? "CausalConvRNNF0Predictor" : "ConvRNNF0Predictor") << "\n"
    << "        num_class: " << h.f0_predictor.num_class << "\n"
    << "        in_channels: " << h.f0_predictor.in_channels << "\n"
    << "        cond_channels: " << h.f0_predictor.cond_channels << "\n";
}

std::string model_yaml(const ModelConfig& c) {
  if (c.family == ModelFamily::CosyVoice3) return cosyvoice3_yaml(c);
  const auto& f = c.flow;
  const auto& e = f.decoder.estimator;
  std::ostringstream y;
  write_yaml_preamble(y, c, "cosyvoice2.yaml", e.num_decoding_left_chunks);
  write_yaml_llm(y, c.llm);
  y << "flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec\n"
    << "    input_size: " << f.input_size << "\n"
    << "    output_size: " << f.output_size << "\n"
    << "    spk_embed_dim: !ref <spk_embed_dim>\n"
    << "    output_type: 'mel'\n"
    << "    vocab_size: " << f.vocab_size << "\n"
    << "    input_frame_rate: !ref <token_frame_rate>\n"
    << "    only_mask_loss: True\n"
    << "    token_mel_ratio: !ref <token_mel_ratio>\n"
    << "    pre_lookahead_len: " << f.pre_lookahead_len << "\n"
    << "    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder\n"
    << "        output_size: " << f.encoder.output_size << "\n"
    << "        attention_heads: " << f.encoder.attention_heads << "\n"
    << "        linear_units: " << f.encoder.linear_units << "\n"
    << "        num_blocks: " << f.encoder.num_blocks << "\n"
    << "        dropout_rate: 0.1\n"
    << "        positional_dropout_rate: 0.1\n"
    << "        attention_dropout_rate: 0.1\n"
    << "        normalize_before: True\n"
    << "        input_layer: '" << f.encoder.input_layer << "'\n"
    << "        pos_enc_layer_type: '" << f.encoder.pos_enc_layer_type << "'\n"
    << "        selfattention_layer_type: '" << f.encoder.selfattention_layer_type << "'\n"
    << "        input_size: " << f.encoder.input_size << "\n"
    << "        use_cnn_module: False\n"
    << "        macaron_style: False\n"
    << "        static_chunk_size: !ref <chunk_size>\n";
  write_yaml_cfm(y, f.decoder);
  y << "        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder\n"
    << "            in_channels: " << e.in_channels << "\n"
    << "            out_channels: " << e.out_channels << "\n"
    << "            channels: " << int_list_str(e.channels) << "\n"
    << "            dropout: 0.0\n"
    << "            attention_head_dim: " << e.attention_head_dim << "\n"
    << "            n_blocks: " << e.n_blocks << "\n"
    << "            num_mid_blocks: " << e.num_mid_blocks << "\n"
    << "            num_heads: " << e.num_heads << "\n"
    << "            act_fn: '" << e.act_fn << "'\n"
    << "            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>\n"
    << "            num_decoding_left_chunks: !ref <num_decoding_left_chunks>\n\n";
  write_yaml_hift(y, c.hift);
  return y.str();
}

std::string qwen_config_json(const QwenConfig& q) {
  nlohmann::ordered_json j;
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = 151643;
  j["eos_token_id"] = 151645;
  j["hidden_act"] = q.hidden_act;
  j["hidden_size"] = q.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = q.intermediate_size;
  j["max_position_embeddings"] = q.max_position_embeddings;
  j["max_window_layers"] = q.num_hidden_layers;
  j["model_type"] = "qwen2";
  j["num_attention_heads"] = q.num_attention_heads;
  j["num_hidden_layers"] = q.num_hidden_layers;
  j["num_key_value_heads"] = q.num_key_value_heads;
  j["rms_norm_eps"] = q.rms_norm_eps;
  j["rope_theta"] = q.rope_theta;
  j["sliding_window"] = q.max_position_embeddings;
  j["tie_word_embeddings"] = q.tie_word_embeddings;
  j["torch_dtype"] = "bfloat16";
  j["use_cache"] = true;
  j["use_sliding_window"] = false;
  j["vocab_size"] = q.vocab_size;
  return j.dump(2) + "\n";
}

WriteModelOptions::Hazard parse_hazard(const std::string& name) {
  if (name == "none") return WriteModelOptions::Hazard::None;
  if (name == "loop") return WriteModelOptions::Hazard::Loop;
  if (name == "fp16") return WriteModelOptions::Hazard::Fp16;
  fail("unknown hazard '", name, "' (none, loop or fp16)");
}

namespace {

Tensor& param(std::vector<std::pair<std::string, Tensor>>& sd, const std::string& name) {
  for (auto& [n, t] : sd) {
    if (n == name) return t;
  }
  fail("no parameter '", name, "'");
}

// The successor map of the looping LM: groups of consecutive ids, each a cycle. Size 1 is
// a token that follows itself.
std::vector<int64_t> loop_successors(int64_t n) {
  static constexpr int64_t kSizes[] = {1, 2, 3, 4, 6, 1, 8, 12, 5, 2};
  std::vector<int64_t> next(static_cast<size_t>(n));
  int64_t start = 0;
  for (size_t g = 0; start < n; ++g) {
    const int64_t size = std::min(kSizes[g % std::size(kSizes)], n - start);
    for (int64_t i = 0; i < size; ++i)
      next[static_cast<size_t>(start + i)] = start + (i + 1) % size;
    start += size;
  }
  return next;
}

// Makes the LM's layers nearly transparent (the last hidden state is about the normalised
// embedding of the last input) and points the decoder row of each token's successor at
// that token's embedding.
void bias_lm_to_loop(const LlmConfig& c, std::vector<std::pair<std::string, Tensor>>& sd) {
  for (int64_t i = 0; i < c.qwen.num_hidden_layers; ++i) {
    const std::string p = "llm.model.model.layers." + std::to_string(i);
    for (const char* w : {".self_attn.o_proj.weight", ".mlp.down_proj.weight"}) {
      Tensor& t = param(sd, p + w);
      for (int64_t k = 0; k < t.numel(); ++k) t.mutable_data<float>()[k] *= 0.02F;
    }
  }
  const Tensor& emb = param(sd, "speech_embedding.weight");
  Tensor& head = param(sd, "llm_decoder.weight");
  Tensor& bias = param(sd, "llm_decoder.bias");
  const int64_t d = emb.shape()[1], rows = head.shape()[0], n = c.speech_token_size;
  // Logit of the successor about kStrength: ~90 % of the mass at the tiny preset's width.
  constexpr float kStrength = 12.0F;
  const std::vector<int64_t> next = loop_successors(n);
  for (int64_t j = 0; j < rows * d; ++j) head.mutable_data<float>()[j] = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* e = emb.data<float>() + t * d;
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += double(e[k]) * e[k];
    // The hidden state is e / rms(e); its squared norm is d.
    const double rms = std::sqrt(ss / static_cast<double>(d) + 1e-6);
    float* row = head.mutable_data<float>() + next[static_cast<size_t>(t)] * d;
    for (int64_t k = 0; k < d; ++k)
      row[k] = static_cast<float>(kStrength * (e[k] / rms) / static_cast<double>(d));
  }
  for (int64_t j = 0; j < rows; ++j) bias.mutable_data<float>()[j] = j < n ? 0.0F : -4.0F;
}

// Layer 0's q and k projections × 300 (attention logits × 9e4, beyond fp16 at any width), and
// the first Snake alphas of every HiFT activation at 1e-6 (1/α = 1e6).
void add_fp16_hazards(std::vector<std::pair<std::string, Tensor>>& llm,
                      std::vector<std::pair<std::string, Tensor>>& hift) {
  for (const char* w : {"llm.model.model.layers.0.self_attn.q_proj.weight",
                        "llm.model.model.layers.0.self_attn.k_proj.weight"}) {
    Tensor& t = param(llm, w);
    for (int64_t k = 0; k < t.numel(); ++k) t.mutable_data<float>()[k] *= 300.0F;
  }
  for (auto& [name, t] : hift) {
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".alpha") == 0)
      t.mutable_data<float>()[0] = 1e-6F;
  }
}

}  // namespace

void write_model_folder(const ModelConfig& c, const std::filesystem::path& out,
                        const WriteModelOptions& options) {
  c.validate();
  const bool cv3 = c.family == ModelFamily::CosyVoice3;
  if (cv3 && options.frontend != WriteModelOptions::Frontend::None)
    fail(
        "make-model: CosyVoice3 folders are written without frontend models "
        "(speech_tokenizer_v3.onnx is not built yet); pass --no-frontend");
  std::filesystem::create_directories(out / "CosyVoice-BlankEN");
  // The family is the yaml present (the official AutoModel's test): drop the other one.
  std::filesystem::remove(out / (cv3 ? "cosyvoice2.yaml" : "cosyvoice3.yaml"));
  write_whole_file(out / (cv3 ? "cosyvoice3.yaml" : "cosyvoice2.yaml"), model_yaml(c));
  write_whole_file(out / "CosyVoice-BlankEN" / "config.json", qwen_config_json(c.llm.qwen));
  if (!options.tokenizer_dir.empty()) {
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"}) {
      const auto src = options.tokenizer_dir / f;
      if (!std::filesystem::exists(src)) continue;
      std::filesystem::copy_file(src, out / "CosyVoice-BlankEN" / f,
                                 std::filesystem::copy_options::overwrite_existing);
      std::filesystem::permissions(out / "CosyVoice-BlankEN" / f,
                                   std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::add);
    }
    if (!text::BpeTokenizer::present(out / "CosyVoice-BlankEN"))
      fail(options.tokenizer_dir.string(),
           ": no tokenizer files (vocab.json + merges.txt, or "
           "tokenizer.json)");
  } else {
    // A tokenizer.json left from an earlier folder would win over the files written here.
    std::filesystem::remove(out / "CosyVoice-BlankEN" / "tokenizer.json");
    text::write_starter_tokenizer(out / "CosyVoice-BlankEN");
  }
  {
    auto llm = random_state_dict(llm_param_specs(c.llm), options.seed,
                                 "llm.model.model.embed_tokens.weight",
                                 c.llm.qwen.tie_word_embeddings ? "llm.model.lm_head.weight" : "");
    auto hift = random_state_dict(hift_param_specs(c.hift), options.seed);
    if (options.hazard == WriteModelOptions::Hazard::Loop) bias_lm_to_loop(c.llm, llm);
    if (options.hazard == WriteModelOptions::Hazard::Fp16) add_fp16_hazards(llm, hift);
    save_state_dict(out / "llm.pt", "llm", llm);
    save_state_dict(out / "hift.pt", "hift", hift);
  }
  {
    auto flow = random_state_dict(flow_param_specs(c.flow), options.seed);
    if (cv3) {
      // The DiT's rotary frequencies, a persistent buffer the official strict load expects.
      const int64_t half = c.flow.decoder.dit.dim_head / 2;
      Tensor inv = Tensor::zeros(DType::F32, {half});
      for (int64_t i = 0; i < half; ++i) {
        inv.mutable_data<float>()[i] = static_cast<float>(
            1.0 / std::pow(10000.0, 2.0 * static_cast<double>(i) /
                                        static_cast<double>(c.flow.decoder.dit.dim_head)));
      }
      flow.emplace_back("decoder.estimator.rotary_embed.inv_freq", inv);
    }
    save_state_dict(out / "flow.pt", "flow", flow);
  }
  if (options.voices) {
    // CosyVoice3's prompt text starts with an instruction ending in <|endofprompt|>, as the
    // official frontend's does; its id is the folder tokenizer's.
    std::vector<int32_t> prefix;
    if (cv3) {
      prefix = load_text_frontend(out, ModelFamily::CosyVoice3)
                   .encode("You are a helpful assistant.<|endofprompt|>");
    }
    write_voices(c, out / "spk2info.pt", options.seed, prefix);
  }
  if (options.frontend != WriteModelOptions::Frontend::None) {
    const bool released = options.frontend == WriteModelOptions::Frontend::Released;
    voice::SpeechTokenizerShape tok =
        released ? voice::released_speech_tokenizer() : voice::tiny_speech_tokenizer();
    voice::CamPlusShape cam = released ? voice::released_campplus() : voice::tiny_campplus();
    cam.embedding = c.flow.spk_embed_dim;
    voice::write_speech_tokenizer(out / "speech_tokenizer_v2.onnx", tok, options.seed + 7001);
    voice::write_campplus(out / "campplus.onnx", cam, options.seed + 7002);
  }
}

}  // namespace cosy
