// libFuzzer: safetensors parsing.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cosy::StateDict sd = cosy::parse_safetensors(
        {{reinterpret_cast<const std::byte*>(data), size}, nullptr}, "fuzz.st");
    for (const auto& name : sd.names()) (void)sd.at(name).to_float_vector();
  } catch (const cosy::Error&) {
  }
  return 0;
}
