// libFuzzer: the restricted unpickler.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    cosy::pickle::parse({reinterpret_cast<const std::byte*>(data), size}, "fuzz.pkl");
  } catch (const cosy::Error&) {
  }
  return 0;
}
