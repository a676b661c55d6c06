#include "server/speech_request.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/base64.h"
#include "server/quality_guard_request.h"

namespace cosy::server {
namespace {

using Json = nlohmann::json;

constexpr AudioEncoding kEncodings[] = {AudioEncoding::Pcm, AudioEncoding::Wav, AudioEncoding::Flac,
                                        AudioEncoding::Opus, AudioEncoding::Mp3};

std::string supported_formats() {
  std::string s;
  for (const auto& n : audio_encoding_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

const char* kind_of(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

const std::string& string_field(const Json& v, const char* name) {
  if (!v.is_string()) invalid(name, "'", name, "' must be a string, not ", kind_of(v));
  return v.get_ref<const std::string&>();
}

double number_field(const Json& v, const char* name) {
  if (!v.is_number()) invalid(name, "'", name, "' must be a number, not ", kind_of(v));
  return v.get<double>();
}

int64_t integer_field(const Json& v, const char* name) {
  if (!v.is_number_integer() && !v.is_number_unsigned())
    invalid(name, "'", name, "' must be an integer, not ", kind_of(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    invalid(name, "'", name, "' is out of range");
  return v.get<int64_t>();
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

const char* audio_encoding_name(AudioEncoding e) {
  switch (e) {
    case AudioEncoding::Pcm:
      return "pcm";
    case AudioEncoding::Wav:
      return "wav";
    case AudioEncoding::Flac:
      return "flac";
    case AudioEncoding::Opus:
      return "opus";
    case AudioEncoding::Mp3:
      return "mp3";
  }
  return "?";
}

const std::vector<std::string>& audio_encoding_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const AudioEncoding e : kEncodings) v.emplace_back(audio_encoding_name(e));
    return v;
  }();
  return names;
}

int64_t count_code_points(std::string_view utf8) {
  int64_t n = 0;
  for (const char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

SpeechRequest parse_speech_request(std::string_view body, const SpeechLimits& limits) {
  const Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    throw ApiError(400, "invalid_request_error", "", "invalid_json",
                   "the request body is not valid JSON");
  }
  if (!j.is_object()) invalid("", "the request body must be a JSON object, not ", kind_of(j));

  SpeechRequest r;
  bool stream_format_given = false;
  std::optional<bool> stream;
  bool have_model = false, have_input = false, have_voice = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "model") {
      r.model = string_field(v, "model");
      have_model = true;
    } else if (key == "input") {
      r.input = string_field(v, "input");
      have_input = true;
    } else if (key == "voice") {
      if (v.is_object()) {
        for (const auto& [k, x] : v.items()) {
          if (k != "id")
            invalid("voice", "unknown field 'voice.", k, "' (a voice object holds 'id')");
        }
        if (!v.contains("id")) invalid("voice", "'voice' as an object needs an 'id'");
        r.voice = string_field(v["id"], "voice");
      } else {
        r.voice = string_field(v, "voice");
      }
      have_voice = true;
    } else if (key == "response_format") {
      const std::string& f = string_field(v, "response_format");
      bool found = false;
      for (const AudioEncoding e : kEncodings) {
        if (f == audio_encoding_name(e)) {
          r.format = e;
          found = true;
        }
      }
      if (!found) {
        invalid("response_format", "response_format '", f,
                "' is not supported (supported: ", supported_formats(), ")");
      }
    } else if (key == "speed") {
      r.speed = number_field(v, "speed");
      if (!(r.speed >= 0.5 && r.speed <= 2.0))
        invalid("speed", "'speed' must be between 0.5 and 2.0, got ", r.speed);

    } else if (key == "instructions") {
      r.instructions = string_field(v, "instructions");
      if (!valid_utf8(r.instructions)) invalid("instructions", "'instructions' is not valid UTF-8");
      if (count_code_points(r.instructions) > 500)
        invalid("instructions", "'instructions' is longer than 500 characters");
    } else if (key == "cross_lingual") {
      if (!v.is_boolean())
        invalid("cross_lingual", "'cross_lingual' must be a boolean, not ", kind_of(v));
      r.cross_lingual = v.get<bool>();
    } else if (key == "ref_audio") {
      const std::string& url = string_field(v, "ref_audio");
      std::optional<std::string> bytes = decode_data_url(url);
      if (!bytes) {
        invalid("ref_audio",
                "'ref_audio' must be a base64 data URL (data:audio/wav;base64,...); this server "
                "reads no files "
                "or URLs");
      }
      if (bytes->empty()) invalid("ref_audio", "'ref_audio' holds no audio");
      r.ref_audio = std::move(*bytes);
    } else if (key == "ref_text") {
      r.ref_text = string_field(v, "ref_text");
      if (!valid_utf8(r.ref_text)) invalid("ref_text", "'ref_text' is not valid UTF-8");
    } else if (key == "forced_tokens_per_text_token") {
      r.forced_tokens_per_text_token = number_field(v, "forced_tokens_per_text_token");
      if (!(r.forced_tokens_per_text_token >= 0 && r.forced_tokens_per_text_token <= 100)) {
        invalid("forced_tokens_per_text_token",
                "'forced_tokens_per_text_token' must be in [0, 100]");
      }
    } else if (key == "quality_guard") {
      merge_quality_guard(QualityGuardOptions{}, v);  // a bad value is a 400 now
      r.quality_guard = v;
    } else if (key == "stream_format") {
      const std::string& f = string_field(v, "stream_format");
      if (f == "audio") {
        r.stream_format = StreamFormat::Audio;
      } else if (f == "sse") {
        r.stream_format = StreamFormat::Sse;
      } else {
        invalid("stream_format", "stream_format '", f, "' is not supported (audio or sse)");
      }
      stream_format_given = true;
    } else if (key == "stream") {
      if (!v.is_boolean()) invalid("stream", "'stream' must be a boolean, not ", kind_of(v));
      stream = v.get<bool>();
    } else if (key == "num_beams") {
      r.beams.num_beams = integer_field(v, "num_beams");
      if (r.beams.num_beams < 1 || r.beams.num_beams > BeamSearchOptions::kMaxBeams) {
        invalid("num_beams", "'num_beams' must be from 1 (sampling) to ",
                BeamSearchOptions::kMaxBeams);
      }
    } else if (key == "length_penalty") {
      r.beams.length_penalty = number_field(v, "length_penalty");
      if (!(r.beams.length_penalty >= 0 && r.beams.length_penalty <= 10))
        invalid("length_penalty", "'length_penalty' must be in [0, 10]");
    } else if (key == "seed") {
      const int64_t seed = integer_field(v, "seed");
      if (seed < 0) invalid("seed", "'seed' must be >= 0");
      r.sampling.seed = static_cast<uint64_t>(seed);
      r.seed_given = true;
    } else if (key == "temperature") {
      r.sampling.temperature = number_field(v, "temperature");
      if (!(r.sampling.temperature > 0 && r.sampling.temperature <= 10))
        invalid("temperature", "'temperature' must be in (0, 10]");
    } else if (key == "top_p") {
      r.sampling.top_p = number_field(v, "top_p");
      if (!(r.sampling.top_p > 0 && r.sampling.top_p <= 1))
        invalid("top_p", "'top_p' must be in (0, 1]");
    } else if (key == "top_k") {
      r.sampling.top_k = integer_field(v, "top_k");
      if (r.sampling.top_k < 0 || r.sampling.top_k > 100000)
        invalid("top_k", "'top_k' must be in [0, 100000]");
    } else if (key == "sampling") {
      const std::string& m = string_field(v, "sampling");
      try {
        r.sampling.method = parse_sampling_method(m);
      } catch (const Error&) {
        invalid("sampling", "sampling '", m, "' is not supported (ras, top-k or greedy)");
      }
    } else {
      invalid(key, "unknown field '", key, "'");
    }
  }
  if (!have_model) invalid("model", "'model' is required");
  if (!have_input) invalid("input", "'input' is required");
  if (!have_voice && !r.has_ref_audio()) invalid("voice", "'voice' is required (or 'ref_audio')");
  if (!r.ref_text.empty() && !r.has_ref_audio())
    invalid("ref_text", "'ref_text' goes with 'ref_audio'");
  if (r.has_ref_audio() && r.ref_text.find_first_not_of(" \t\r\n") == std::string::npos &&
      r.instructions.empty() && !r.cross_lingual) {
    invalid("ref_text",
            "'ref_audio' needs 'ref_text', the words it says (or 'instructions' or "
            "'cross_lingual', which do not use them)");
  }
  if (r.cross_lingual && r.instructions.find_first_not_of(" \t\r\n") != std::string::npos) {
    invalid("cross_lingual",
            "'cross_lingual' and 'instructions' are two modes: the LM hears either no prompt or "
            "the instruction");
  }
  bool known = false;
  for (const auto& m : limits.models) known = known || m == r.model;
  if (!known) {
    throw ApiError(404, "invalid_request_error", "model", "model_not_found",
                   cat("the model '", r.model, "' does not exist (GET /v1/models lists it)"));
  }
  if (!valid_utf8(r.input)) invalid("input", "'input' is not valid UTF-8");
  if (r.input.find_first_not_of(" \t\r\n") == std::string::npos)
    invalid("input", "'input' is empty");
  if (const int64_t n = count_code_points(r.input); n > limits.max_input_chars) {
    throw ApiError(413, "invalid_request_error", "input", "input_too_long",
                   cat("'input' has ", n, " characters, over this server's limit of ",
                       limits.max_input_chars));
  }
  if (stream && *stream && !stream_format_given) r.stream_format = StreamFormat::Sse;
  if (r.sampling.method == SamplingMethod::Ras && r.sampling.top_k < 1)
    invalid("top_k", "ras sampling needs 'top_k' >= 1");
  return r;
}

}  // namespace cosy::server
