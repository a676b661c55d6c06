// libFuzzer: a multipart/form-data body (POST /v1/audio/voices), as untrusted bytes, into
// form parts. Every input parses or is an ApiError (400).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api_error.h"
#include "server/form_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    (void)cosy::server::parse_form_data("multipart/form-data; boundary=XyZ", body);
  } catch (const cosy::server::ApiError& e) {
    if (e.status() != 400) __builtin_trap();
  }
  return 0;
}
