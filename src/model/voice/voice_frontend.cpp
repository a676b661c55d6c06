#include "model/voice/voice_frontend.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/audio_file.h"
#include "model/voice/resample.h"

namespace cosy::voice {

namespace {

std::filesystem::path required_file(const std::filesystem::path& dir, const char* name) {
  std::filesystem::path p = dir / name;
  if (!std::filesystem::is_regular_file(p)) {
    fail(dir.string(), " has no ", name,
         ": voices from recordings need it (the released model folders ship it)");
  }
  return p;
}

}  // namespace

std::vector<int32_t> PromptAnalysis::prompt_speech_token() const {
  return {tokens.begin(), tokens.begin() + prompt_tokens};
}

Matrix PromptAnalysis::prompt_speech_feat() const {
  const int64_t rows = token_mel_ratio * prompt_tokens;
  Matrix m{rows, speech_feat.cols, {}};
  m.data.assign(speech_feat.data.begin(), speech_feat.data.begin() + rows * speech_feat.cols);
  return m;
}

VoiceFrontend::VoiceFrontend(const std::filesystem::path& model_dir, const ModelConfig& config)
    : tokenizer_(required_file(model_dir, speech_tokenizer_file(config.family))),
      speaker_(required_file(model_dir, kSpeakerEncoderFile)),
      model_rate_(static_cast<int>(config.sample_rate)),
      token_mel_ratio_(config.token_mel_ratio) {
  const FeatExtractorConfig& f = config.feat_extractor;
  mel_ = f;
  if (config.flow.output_size > 0 && f.num_mels != config.flow.output_size) {
    fail("feat_extractor.num_mels ", f.num_mels, " differs from the flow's ",
         config.flow.output_size, " mel bins");
  }
}

PromptAnalysis VoiceFrontend::analyze(std::span<const std::byte> audio,
                                      const std::string& label) const {
  // Decoding stops a little past the limit at the file's rate; the exact check is below.
  Audio a = decode_audio_mean(audio, label, kMaxPromptSeconds + 1.0);
  return analyze_samples(std::move(a.samples), a.sample_rate, label);
}

PromptAnalysis VoiceFrontend::analyze_samples(std::vector<float> mono, int sample_rate,
                                              const std::string& label) const {
  if (mono.empty()) fail(label, ": the recording has no samples");
  if (sample_rate < kMinSampleRate) {
    fail(label, ": the sample rate is ", sample_rate, " Hz; a prompt needs at least ",
         kMinSampleRate, " Hz");
  }
  float peak = 0.0f;
  for (float v : mono) {
    if (!std::isfinite(v)) fail(label, ": the recording holds NaN or infinite samples");
    peak = std::max(peak, std::fabs(v));
  }
  if (peak < 1.0f / 32768.0f)
    fail(label, ": the recording is silent (no sample reaches one 16-bit step)");

  PromptAnalysis p;
  p.input_rate = sample_rate;
  p.token_mel_ratio = token_mel_ratio_;
  p.wave = std::move(mono);
  p.wave16k = resample(p.wave, sample_rate, 16000);
  const double seconds = static_cast<double>(p.wave16k.size()) / 16000.0;
  if (seconds > kMaxPromptSeconds) {
    fail(label, ": the recording is ", seconds, " s long; a prompt may be at most ",
         kMaxPromptSeconds, " s");
  }
  if (p.wave16k.size() < 400) {
    fail(label, ": the recording is ", seconds * 1000.0,
         " ms long; a prompt needs at least 25 ms (and a few seconds to sound like the speaker)");
  }
  p.wave24k = resample(p.wave, sample_rate, model_rate_);

  p.whisper_mel = whisper_log_mel(p.wave16k, static_cast<int>(tokenizer_.mel_bins()));
  p.tokens = tokenizer_.tokens(p.whisper_mel);

  p.fbank = kaldi_fbank(p.wave16k, static_cast<int>(speaker_.fbank_bins()));
  p.campplus_input = p.fbank;
  subtract_column_means(p.campplus_input);
  p.embedding = speaker_.embed(p.campplus_input);

  p.speech_feat = prompt_mel(p.wave24k, mel_);
  p.prompt_tokens = std::min<int64_t>(p.speech_feat.rows / token_mel_ratio_,
                                      static_cast<int64_t>(p.tokens.size()));
  if (p.prompt_tokens <= 0) fail(label, ": the recording is too short to give one speech token");
  return p;
}

}  // namespace cosy::voice
