// Typed, validated hyperparameters of a CosyVoice2 or CosyVoice3 model, read from
// cosyvoice2.yaml / cosyvoice3.yaml and CosyVoice-BlankEN/config.json. Each struct lists its fields
// for printing (to_string) and checks itself (validate), sherpa-onnx style; errors name the yaml
// path.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cosy {

namespace yaml {
class Document;
}

using ConfigFields = std::vector<std::pair<std::string, std::string>>;
// "Name(a=1, b=2)"
std::string fields_to_string(const std::string& name, const ConfigFields& fields);
// "[1, 2]" and "[[1, 3], [5]]", as Python and YAML flow lists print them.
std::string int_list_str(const std::vector<int64_t>& v);
std::string int_matrix_str(const std::vector<std::vector<int64_t>>& m);

// The model family, as the official AutoModel decides it: by which yaml the folder holds.
enum class ModelFamily { CosyVoice2, CosyVoice3 };
const char* model_family_name(ModelFamily f);  // "CosyVoice2" / "CosyVoice3"

// The Qwen2 backbone (CosyVoice-BlankEN/config.json).
struct QwenConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  std::string hidden_act = "silu";

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  ConfigFields fields() const;
  void validate() const;
};

// Official ras_sampling defaults from the yaml.
struct SamplingConfig {
  double top_p = 0.8;
  int64_t top_k = 25;
  int64_t win_size = 10;
  double tau_r = 0.1;
};

struct LlmConfig {
  std::string class_name;  // cosyvoice.llm.llm.Qwen2LM / CosyVoice3LM
  ModelFamily family = ModelFamily::CosyVoice2;
  int64_t llm_input_size = 0;
  int64_t llm_output_size = 0;
  int64_t speech_token_size = 0;   // 6561
  std::vector<int64_t> mix_ratio;  // bistream text:speech, [5, 15]
  SamplingConfig sampling;
  QwenConfig qwen;

  // Ids after the speech tokens, in the head and the speech embedding. CosyVoice2: EOS, an
  // unused stop id and the fill token (sos and task_id live in llm_embedding). CosyVoice3:
  // sos, EOS, task_id, fill and 196 unused ids.
  int64_t special_ids() const { return family == ModelFamily::CosyVoice3 ? 200 : 3; }
  int64_t decoder_vocab() const { return speech_token_size + special_ids(); }
  bool decoder_bias() const { return family == ModelFamily::CosyVoice2; }
  ConfigFields fields() const;
  void validate() const;
};

struct ConformerConfig {
  int64_t input_size = 0;
  int64_t output_size = 0;
  int64_t attention_heads = 0;
  int64_t linear_units = 0;
  int64_t num_blocks = 0;
  int64_t num_up_blocks = 4;  // fixed in UpsampleConformerEncoder
  int64_t upsample_stride = 2;
  int64_t static_chunk_size = 0;
  bool normalize_before = true;
  bool use_cnn_module = false;
  bool macaron_style = false;
  bool use_dynamic_chunk = false;  // newer upstream yamls set this instead of static_chunk_size
  std::string input_layer;
  std::string pos_enc_layer_type;
  std::string selfattention_layer_type;

  ConfigFields fields() const;
  void validate() const;
};

struct EstimatorConfig {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  std::vector<int64_t> channels;
  int64_t attention_head_dim = 0;
  int64_t n_blocks = 0;
  int64_t num_mid_blocks = 0;
  int64_t num_heads = 0;
  std::string act_fn;
  int64_t static_chunk_size = 0;
  int64_t num_decoding_left_chunks = -1;

  int64_t time_embed_dim() const { return channels.empty() ? 0 : channels.front() * 4; }
  ConfigFields fields() const;
  void validate() const;
};

// CosyVoice3's estimator (cosyvoice.flow.DiT.dit.DiT).
struct DitConfig {
  int64_t dim = 0;
  int64_t depth = 0;
  int64_t heads = 0;
  int64_t dim_head = 0;
  int64_t ff_mult = 2;
  int64_t mel_dim = 80;
  int64_t mu_dim = 80;
  int64_t spk_dim = 80;
  int64_t out_channels = 80;
  int64_t static_chunk_size = 0;
  int64_t num_decoding_left_chunks = -1;
  // Fixed by the code, not the yaml: the time embedding's sinusoid width, and the causal
  // convolutional position embedding's kernel and groups.
  static constexpr int64_t kTimeSinusoidDim = 256;
  static constexpr int64_t kConvPosKernel = 31;
  static constexpr int64_t kConvPosGroups = 16;

  int64_t inner_dim() const { return heads * dim_head; }
  // The input projection sees x, cond, mu and the speaker vector stacked.
  int64_t input_dim() const { return 2 * mel_dim + mu_dim + spk_dim; }
  ConfigFields fields() const;
  void validate() const;
};

// CosyVoice3's PreLookaheadLayer (the flow's only front end: no conformer).
struct PreLookaheadConfig {
  int64_t in_channels = 0;
  int64_t channels = 0;
  int64_t pre_lookahead_len = 3;
  ConfigFields fields() const;
  void validate() const;
};

struct CfmConfig {
  // The official initial noise table (CausalConditionalCFM.rand_noise, randn [1, 80, 15000]),
  // the same for CosyVoice2 and CosyVoice3.
  static constexpr int64_t kNoiseChannels = 80;
  static constexpr int64_t kNoiseFrames = 15000;
  int64_t in_channels = 0;
  int64_t n_spks = 1;
  int64_t spk_emb_dim = 0;
  double sigma_min = 1e-6;
  std::string solver = "euler";
  std::string t_scheduler = "cosine";
  double training_cfg_rate = 0.2;
  double inference_cfg_rate = 0.7;
  EstimatorConfig estimator;  // CosyVoice2's UNet
  DitConfig dit;              // CosyVoice3's DiT

  ConfigFields fields() const;
  void validate() const;
};

struct FlowConfig {
  std::string class_name;  // cosyvoice.flow.flow.CausalMaskedDiffWithXvec / ...WithDiT
  ModelFamily family = ModelFamily::CosyVoice2;
  int64_t input_size = 0;
  int64_t output_size = 0;  // mel bins
  int64_t spk_embed_dim = 0;
  int64_t vocab_size = 0;
  int64_t input_frame_rate = 25;
  int64_t token_mel_ratio = 2;
  int64_t pre_lookahead_len = 3;
  std::string output_type = "mel";
  ConformerConfig encoder;           // CosyVoice2
  PreLookaheadConfig pre_lookahead;  // CosyVoice3
  CfmConfig decoder;

  ConfigFields fields() const;
  void validate() const;

 private:
  void validate_dit() const;
};

struct F0PredictorConfig {
  int64_t num_class = 1;
  int64_t in_channels = 80;
  int64_t cond_channels = 0;
  bool causal = false;  // CausalConvRNNF0Predictor: a right look-ahead first conv (k = 4)
};

struct HiftConfig {
  std::string class_name;  // cosyvoice.hifigan.generator.HiFTGenerator / CausalHiFTGenerator
  // CausalHiFTGenerator (CosyVoice3): causal convolutions with a right look-ahead, Conv1d
  // upsampling, a fixed sine source.
  bool causal = false;
  int64_t conv_pre_look_right = 0;  // causal: conv_pre's kernel is this + 1
  int64_t in_channels = 80;
  int64_t base_channels = 0;
  int64_t nb_harmonics = 8;
  int64_t sampling_rate = 24000;
  double nsf_alpha = 0.1;
  double nsf_sigma = 0.003;
  double nsf_voiced_threshold = 10;
  std::vector<int64_t> upsample_rates;
  std::vector<int64_t> upsample_kernel_sizes;
  int64_t n_fft = 16;
  int64_t hop_len = 4;
  std::vector<int64_t> resblock_kernel_sizes;
  std::vector<std::vector<int64_t>> resblock_dilation_sizes;
  std::vector<int64_t> source_resblock_kernel_sizes;
  std::vector<std::vector<int64_t>> source_resblock_dilation_sizes;
  double lrelu_slope = 0.1;
  double audio_limit = 0.99;
  F0PredictorConfig f0_predictor;

  // Samples per mel frame: prod(upsample_rates) * hop_len (480 at 24 kHz).
  int64_t samples_per_frame() const;
  ConfigFields fields() const;
  void validate() const;
};

// The yaml's feat_extractor (Matcha's mel_spectrogram): the flow's prompt mel.
struct FeatExtractorConfig {
  int64_t n_fft = 1920;
  int64_t num_mels = 80;
  int64_t sampling_rate = 24000;
  int64_t hop_size = 480;
  int64_t win_size = 1920;
  double fmin = 0;
  double fmax = 8000;  // CosyVoice3's yaml says null: half the sampling rate
  ConfigFields fields() const;
  void validate() const;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::CosyVoice2;
  int64_t sample_rate = 24000;
  int64_t token_frame_rate = 25;
  int64_t token_mel_ratio = 2;
  int64_t chunk_size = 25;
  LlmConfig llm;
  FlowConfig flow;
  HiftConfig hift;
  FeatExtractorConfig feat_extractor;

  ConfigFields fields() const;
  // Checks each stage and the constraints between stages.
  void validate() const;
};

// CosyVoice3: how many mt19937 outputs the official construction draws before the causal
// vocoder's fixed buffers (CausalConditionalCFM's set_all_random_seed(0), then its noise
// table, the flow's input_embedding and speaker affine, the F0 predictor's initial weights).
// 5,052,961 for Fun-CosyVoice3-0.5B.
int64_t causal_hift_noise_offset(const ModelConfig& m);

QwenConfig parse_qwen_config(const std::string& json_text, const std::string& label);
// Reads the engine's values from a parsed cosyvoice2.yaml or cosyvoice3.yaml (`family`
// says which the folder holds; the classes must be that family's); training and dataset
// sections are ignored. Calls validate().
ModelConfig parse_model_config(const yaml::Document& yaml, const QwenConfig& qwen,
                               ModelFamily family = ModelFamily::CosyVoice2);

}  // namespace cosy
