// Voices from recordings: the zero-shot frontend (model/voice) plus the transcript's text
// ids, giving a voice in the official spk2info.pt form (what add_zero_shot_spk stores),
// which VoicePrompt::from_voice turns into the engine's prompt.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "model/voice/voice_frontend.h"
#include "model/voices.h"
#include "runtime/voice_prompt.h"
#include "text/text_frontend.h"

namespace cosy {

// Voice ids are names a user gives: 1–64 letters, digits, '_', '-' or '.', not starting
// with '.', so they are safe as map keys, in file names and in URLs.
bool is_valid_voice_id(const std::string& id);

// The LM prompt of instruct2: the instruction's text ids followed by <|endofprompt|> (added
// unless the instruction already ends with it, as the official examples write it).
std::vector<int32_t> instruction_ids(const text::TextFrontend& text, std::string_view instruction);

// The instruction the official CosyVoice3 examples put before a transcript or a
// cross-lingual text.
inline constexpr std::string_view kCosyVoice3DefaultInstruction =
    "You are a helpful assistant.<|endofprompt|>";

// frontend_cross_lingual for the frontend's family: the LM hears no transcript and no
// prompt speech. CosyVoice3's LM needs an instruction even then (the official examples
// put it in front of the text): it hears kCosyVoice3DefaultInstruction. `text` may be null
// (no tokenizer: CosyVoice2's form).
std::shared_ptr<const VoicePrompt> cross_lingual(const std::shared_ptr<const VoicePrompt>& voice,
                                                 const text::TextFrontend* text);

class VoiceMaker {
 public:
  // Loads the folder's speech_tokenizer_v2.onnx and campplus.onnx.
  VoiceMaker(const std::filesystem::path& model_dir, const ModelConfig& config,
             const text::TextFrontend& text);

  // A zero-shot voice from a recording (`audio`: a file's bytes) and what it says. The
  // transcript is normalised as the official inference_zero_shot does and must not be
  // empty. Errors name `label`.
  Voice make(const std::string& id, std::span<const std::byte> audio, const std::string& label,
             const std::string& transcript) const;
  // A one-off voice for the engine, not stored (frontend_zero_shot): the LM gets the
  // transcript and the prompt speech. An empty transcript leaves the LM part empty, for
  // cross-lingual or instruct2 use, which replace it anyway.
  VoicePrompt one_off(std::span<const std::byte> audio, const std::string& label,
                      const std::string& transcript) const;

  const voice::VoiceFrontend& frontend() const { return frontend_; }

 private:
  // The transcript's text ids, normalised as inference_zero_shot does (CosyVoice3: behind
  // an instruction and <|endofprompt|>, as written); an empty one is an Error.
  std::vector<int32_t> transcript_ids(const std::string& transcript) const;

  voice::VoiceFrontend frontend_;
  const text::TextFrontend& text_;
};

}  // namespace cosy
