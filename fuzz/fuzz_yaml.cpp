// libFuzzer: the hyperpyyaml reader, and config extraction on top of it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/hyperpyyaml.h"
#include "model/config.h"
#include "model/model_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cosy::QwenConfig qwen = cosy::preset_config("tiny").llm.qwen;
  try {
    const auto doc = cosy::yaml::parse({reinterpret_cast<const char*>(data), size}, "fuzz.yaml");
    // As either family's yaml: each reads its own sections.
    for (const auto family : {cosy::ModelFamily::CosyVoice2, cosy::ModelFamily::CosyVoice3}) {
      try {
        cosy::parse_model_config(doc, qwen, family);
      } catch (const cosy::Error&) {
      }
    }
  } catch (const cosy::Error&) {
  }
  return 0;
}
