// libFuzzer: a POST /v1/audio/speech body, as untrusted bytes, into validated options.
// Every input either parses into a request within the limits or is an ApiError.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api_error.h"
#include "server/speech_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cosy::server::SpeechLimits limits;
  limits.models = {"cosyvoice2"};
  limits.max_input_chars = 64;
  try {
    const auto r = cosy::server::parse_speech_request(
        std::string_view(reinterpret_cast<const char*>(data), size), limits);
    if (r.model != "cosyvoice2" || r.input.empty() ||
        cosy::server::count_code_points(r.input) > limits.max_input_chars) {
      __builtin_trap();  // accepted something the limits forbid
    }
    (void)cosy::server::ApiError(400, "t", "p", "c", "m").json();
  } catch (const cosy::server::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) __builtin_trap();
    (void)e.json();
  }
  return 0;
}
