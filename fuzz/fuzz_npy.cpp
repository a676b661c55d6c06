// libFuzzer: .npy parsing.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cosy::Tensor t =
        cosy::parse_npy({{reinterpret_cast<const std::byte*>(data), size}, nullptr}, "fuzz.npy");
    (void)t.to_float_vector();
  } catch (const cosy::Error&) {
  }
  return 0;
}
