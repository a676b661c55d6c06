// POST /v1/audio/speech's body (OpenAI's fields plus the extensions vLLM-Omni accepts for
// CosyVoice), parsed and validated before anything reaches the engine. Untrusted bytes in,
// a SpeechRequest or an ApiError naming the field out (fuzz/fuzz_speech_request.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/audio_file.h"
#include "runtime/lm_decoder.h"
#include "runtime/sampler.h"

namespace cosy::server {

enum class AudioEncoding { Pcm, Wav, Flac, Opus, Mp3 };
const char* audio_encoding_name(AudioEncoding e);
const std::vector<std::string>& audio_encoding_names();  // what response_format accepts

enum class StreamFormat {
  Audio,  // the encoded bytes, with chunked transfer
  Sse,    // server-sent events: speech.audio.delta (base64), speech.audio.done / .error
};

struct SpeechRequest {
  std::string model;
  std::string input;
  std::string voice;
  AudioEncoding format = AudioEncoding::Mp3;  // OpenAI's default
  StreamFormat stream_format = StreamFormat::Audio;
  double speed = 1.0;
  SamplingParams sampling;  // seed, temperature, top_p, top_k, method
  bool seed_given = false;
  // num_beams > 1: beam search instead of sampling (runtime/lm_decoder.h).
  BeamSearchOptions beams;
  // CosyVoice2's instruct2 mode: an instruction in place of the prompt transcript.
  std::string instructions;
  // CosyVoice2's cross-lingual mode: the LM hears no prompt (neither the voice's transcript
  // nor its speech), the flow keeps the voice, so the voice speaks another language.
  bool cross_lingual = false;
  // A one-off voice (vLLM-Omni's fields): a recording as a base64 data URL, decoded here,
  // and what it says. With ref_audio, `voice` may be left out (and is ignored).
  std::string ref_audio;
  std::string ref_text;
  // Load testing with untrained weights (cosyserve loadtest): the LM speaks this many
  // speech tokens per text token, whatever it would say; 0: it decides.
  double forced_tokens_per_text_token = 0;
  // The quality guard over the server's default (server/quality_guard_request.h); null:
  // the default as it is.
  nlohmann::json quality_guard;
  bool has_ref_audio() const { return !ref_audio.empty(); }
};

struct SpeechLimits {
  std::vector<std::string> models;  // ids GET /v1/models lists
  int64_t max_input_chars = 20000;  // over it: 413
};

SpeechRequest parse_speech_request(std::string_view body, const SpeechLimits& limits);

// Unicode code points of valid UTF-8.
int64_t count_code_points(std::string_view utf8);

}  // namespace cosy::server
