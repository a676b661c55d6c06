// libFuzzer: an uploaded recording (ref_audio, POST /v1/audio/voices), as untrusted bytes,
// through libsndfile into mono samples. Every input decodes within the limit or is an Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "io/audio_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cosy::Audio a = cosy::decode_audio_mean(std::as_bytes(std::span(data, size)), "fuzz", 2.0);
    if (a.sample_rate <= 0 || static_cast<double>(a.samples.size()) > 2.0 * a.sample_rate + 1) __builtin_trap();
  } catch (const cosy::Error&) {
  }
  return 0;
}
