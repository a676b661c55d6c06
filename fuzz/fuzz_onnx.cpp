// libFuzzer: an ONNX file, as untrusted bytes, into a loaded and checked model (protobuf
// parsing, weights, attributes, the node checks). Every input loads or is an Error.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "io/blob.h"
#include "onnx/graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cosy::Blob blob{std::as_bytes(std::span(data, size)), nullptr};
    const auto model = cosy::onnx::Model::parse(blob, "/nonexistent-fuzz-dir", "fuzz.onnx");
    (void)model->op_counts();
  } catch (const cosy::Error&) {
  }
  return 0;
}
