// libFuzzer: the zip container and everything torch.save puts in it (pickle, storages).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cosy::Blob blob{{reinterpret_cast<const std::byte*>(data), size}, nullptr};
  try {
    cosy::ZipArchive zip(blob, "fuzz.zip");
    for (const auto& e : zip.entries()) zip.read_verified(e);
  } catch (const cosy::Error&) {
  }
  try {
    const cosy::TorchFile file = cosy::TorchFile::from_blob(blob, "fuzz.pt");
    const cosy::StateDict sd = cosy::state_dict_of(file);
    double sum = 0;
    for (const auto& name : sd.names()) {
      for (float v : sd.at(name).to_float_vector()) sum += v;
    }
    (void)sum;
  } catch (const cosy::Error&) {
  }
  return 0;
}
