#include "runtime/voice_maker.h"

#include <cstring>

#include "core/error.h"

namespace cosy {

bool is_valid_voice_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::vector<int32_t> instruction_ids(const text::TextFrontend& text, std::string_view instruction) {
  constexpr std::string_view kEnd = "<|endofprompt|>";
  const size_t b = instruction.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) fail("the instruction is empty");
  instruction = instruction.substr(b, instruction.find_last_not_of(" \t\r\n") - b + 1);
  std::string full(instruction);
  if (!instruction.ends_with(kEnd)) full += kEnd;
  std::vector<int32_t> ids = text.encode(full);
  const std::vector<int32_t> end = text.encode(kEnd);
  if (end.size() != 1 || ids.size() < 2 || ids.back() != end[0]) {
    fail(
        "the tokenizer does not know <|endofprompt|> as one token; instructions need CosyVoice2's "
        "tokenizer");
  }
  return ids;
}

std::shared_ptr<const VoicePrompt> cross_lingual(const std::shared_ptr<const VoicePrompt>& voice,
                                                 const text::TextFrontend* text) {
  if (text == nullptr || text->flavor() != text::TextFlavor::CosyVoice3)
    return cross_lingual(voice);
  auto p = std::make_shared<VoicePrompt>(*cross_lingual(voice));  // no LM prompt
  p->text = text->encode(kCosyVoice3DefaultInstruction);
  return p;
}

namespace {

Tensor int_row(const std::vector<int32_t>& v) {
  Tensor t = Tensor::zeros(DType::I32, {1, static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(t.mutable_raw(), v.data(), v.size() * sizeof(int32_t));
  return t;
}

Tensor length_of(int64_t n) {
  Tensor t = Tensor::zeros(DType::I32, {1});
  t.mutable_data<int32_t>()[0] = static_cast<int32_t>(n);
  return t;
}

}  // namespace

VoiceMaker::VoiceMaker(const std::filesystem::path& model_dir, const ModelConfig& config,
                       const text::TextFrontend& text)
    : frontend_(model_dir, config), text_(text) {}

std::vector<int32_t> VoiceMaker::transcript_ids(const std::string& transcript) const {
  if (transcript.find_first_not_of(" \t\r\n") == std::string::npos) {
    fail("the transcript is empty; a zero-shot voice needs the words the recording says");
  }
  if (text_.flavor() == text::TextFlavor::CosyVoice3) {
    // CosyVoice3's prompt text is an instruction ending in <|endofprompt|>, then the
    // transcript; the official examples' instruction unless one is given. Text holding a
    // <|...|> tag is not normalised (kept_as_written).
    const std::string full = transcript.find("<|endofprompt|>") == std::string::npos
                                 ? std::string(kCosyVoice3DefaultInstruction) + transcript
                                 : transcript;
    return text_.encode(full);
  }
  std::vector<int32_t> ids = text_.encode(text_.normalize(transcript));
  if (ids.empty()) fail("the transcript has nothing to speak after normalisation");
  return ids;
}

VoicePrompt VoiceMaker::one_off(std::span<const std::byte> audio, const std::string& label,
                                const std::string& transcript) const {
  std::vector<int32_t> text;  // checked before the recording is analysed
  if (transcript.find_first_not_of(" \t\r\n") != std::string::npos)
    text = transcript_ids(transcript);
  const voice::PromptAnalysis analysis = frontend_.analyze(audio, label);
  VoicePrompt p;
  p.speech = analysis.prompt_speech_token();
  p.feat = analysis.prompt_speech_feat().data;
  p.embedding = analysis.embedding;
  if (!text.empty()) {
    p.text = std::move(text);
    p.lm_speech = p.speech;
  }
  return p;
}

Voice VoiceMaker::make(const std::string& id, std::span<const std::byte> audio,
                       const std::string& label, const std::string& transcript) const {
  if (!is_valid_voice_id(id)) {
    fail("voice id '", id, "' is not valid: use 1 to 64 letters, digits, '_', '-' or '.'");
  }
  const std::vector<int32_t> text = transcript_ids(transcript);  // before the heavy part
  const voice::PromptAnalysis p = frontend_.analyze(audio, label);
  Voice v;
  v.id = id;
  const std::vector<int32_t> speech = p.prompt_speech_token();
  const voice::Matrix feat = p.prompt_speech_feat();
  Tensor tokens = int_row(speech);
  Tensor mel = Tensor::zeros(DType::F32, {1, feat.rows, feat.cols});
  std::memcpy(mel.mutable_raw(), feat.data.data(), feat.data.size() * sizeof(float));
  Tensor embedding = Tensor::zeros(DType::F32, {1, static_cast<int64_t>(p.embedding.size())});
  std::memcpy(embedding.mutable_raw(), p.embedding.data(), p.embedding.size() * sizeof(float));
  // As add_zero_shot_spk stores them: the LLM and flow share one token and one embedding tensor.
  v.tensors["prompt_text"] = int_row(text);
  v.tensors["prompt_text_len"] = length_of(static_cast<int64_t>(text.size()));
  v.tensors["llm_prompt_speech_token"] = tokens;
  v.tensors["llm_prompt_speech_token_len"] = length_of(static_cast<int64_t>(speech.size()));
  v.tensors["flow_prompt_speech_token"] = tokens;
  v.tensors["flow_prompt_speech_token_len"] = length_of(static_cast<int64_t>(speech.size()));
  v.tensors["prompt_speech_feat"] = mel;
  v.tensors["prompt_speech_feat_len"] = length_of(feat.rows);
  v.tensors["llm_embedding"] = embedding;
  v.tensors["flow_embedding"] = embedding;
  return v;
}

}  // namespace cosy
