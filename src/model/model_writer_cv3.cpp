#include "model/model_writer_cv3.h"

#include <sstream>

namespace cosy {
namespace {

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

ModelConfig cosyvoice3_preset_config(bool full) {
  ModelConfig c;
  c.family = ModelFamily::CosyVoice3;
  c.sample_rate = 24000;
  c.token_frame_rate = 25;
  c.token_mel_ratio = 2;
  c.chunk_size = 25;

  QwenConfig& q = c.llm.qwen;  // Qwen2.5-0.5B, as CosyVoice2's
  q.hidden_size = full ? 896 : 64;
  q.intermediate_size = full ? 4864 : 128;
  q.num_hidden_layers = full ? 24 : 2;
  q.num_attention_heads = full ? 14 : 4;
  q.num_key_value_heads = 2;
  q.vocab_size = 151936;  // holds <|endofprompt|> = 151646
  q.max_position_embeddings = 32768;
  q.rms_norm_eps = 1e-6;
  q.rope_theta = 1000000.0;
  q.tie_word_embeddings = true;
  c.llm.class_name = "cosyvoice.llm.llm.CosyVoice3LM";
  c.llm.family = ModelFamily::CosyVoice3;
  c.llm.llm_input_size = q.hidden_size;
  c.llm.llm_output_size = q.hidden_size;
  c.llm.speech_token_size = 6561;
  c.llm.mix_ratio = {5, 15};

  FlowConfig& f = c.flow;
  f.class_name = "cosyvoice.flow.flow.CausalMaskedDiffWithDiT";
  f.family = ModelFamily::CosyVoice3;
  f.input_size = 80;
  f.output_size = 80;
  f.spk_embed_dim = 192;
  f.vocab_size = 6561;
  f.pre_lookahead.in_channels = 80;
  f.pre_lookahead.channels = full ? 1024 : 64;
  f.pre_lookahead.pre_lookahead_len = f.pre_lookahead_len;
  f.decoder.in_channels = 240;
  f.decoder.spk_emb_dim = 80;
  DitConfig& d = f.decoder.dit;
  d.dim = full ? 1024 : 64;
  d.depth = full ? 22 : 2;
  d.heads = full ? 16 : 4;
  d.dim_head = full ? 64 : 16;
  d.ff_mult = 2;
  d.static_chunk_size = c.chunk_size * c.token_mel_ratio;
  d.num_decoding_left_chunks = -1;

  HiftConfig& h = c.hift;
  h.class_name = "cosyvoice.hifigan.generator.CausalHiFTGenerator";
  h.causal = true;
  h.conv_pre_look_right = 4;
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
  h.f0_predictor = {1, 80, full ? 512 : 32, true};
  c.feat_extractor.fmax = static_cast<double>(c.sample_rate) / 2.0;  // the yaml's null
  c.validate();
  return c;
}

std::string cosyvoice3_yaml(const ModelConfig& c) {
  const auto& l = c.llm;
  const auto& f = c.flow;
  const auto& d = f.decoder.dit;
  const auto& h = c.hift;
  std::ostringstream y;
  write_yaml_preamble(y, c, "cosyvoice3.yaml", d.num_decoding_left_chunks);
  write_yaml_llm(y, l);
  y << "flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithDiT\n"
    << "    input_size: " << f.input_size << "\n"
    << "    output_size: " << f.output_size << "\n"
    << "    spk_embed_dim: !ref <spk_embed_dim>\n"
    << "    output_type: 'mel'\n"
    << "    vocab_size: " << f.vocab_size << "\n"
    << "    input_frame_rate: !ref <token_frame_rate>\n"
    << "    only_mask_loss: True\n"
    << "    token_mel_ratio: !ref <token_mel_ratio>\n"
    << "    pre_lookahead_len: " << f.pre_lookahead_len << "\n"
    << "    pre_lookahead_layer: !new:cosyvoice.transformer.upsample_encoder.PreLookaheadLayer\n"
    << "        in_channels: " << f.pre_lookahead.in_channels << "\n"
    << "        channels: " << f.pre_lookahead.channels << "\n"
    << "        pre_lookahead_len: " << f.pre_lookahead.pre_lookahead_len << "\n";
  write_yaml_cfm(y, f.decoder);
  y << "        estimator: !new:cosyvoice.flow.DiT.dit.DiT\n"
    << "            dim: " << d.dim << "\n"
    << "            depth: " << d.depth << "\n"
    << "            heads: " << d.heads << "\n"
    << "            dim_head: " << d.dim_head << "\n"
    << "            ff_mult: " << d.ff_mult << "\n"
    << "            mel_dim: " << d.mel_dim << "\n"
    << "            mu_dim: " << d.mu_dim << "\n"
    << "            spk_dim: " << d.spk_dim << "\n"
    << "            out_channels: " << d.out_channels << "\n"
    << "            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>\n"
    << "            num_decoding_left_chunks: !ref <num_decoding_left_chunks>\n\n";
  write_yaml_hift(y, h);
  y << "\n"
    << "feat_extractor: !name:matcha.utils.audio.mel_spectrogram\n"
    << "    n_fft: " << c.feat_extractor.n_fft << "\n"
    << "    num_mels: " << c.feat_extractor.num_mels << "\n"
    << "    sampling_rate: !ref <sample_rate>\n"
    << "    hop_size: " << c.feat_extractor.hop_size << "\n"
    << "    win_size: " << c.feat_extractor.win_size << "\n"
    << "    fmin: " << num(c.feat_extractor.fmin) << "\n"
    << "    fmax: null\n"
    << "    center: False\n";
  return y.str();
}

}  // namespace cosy
