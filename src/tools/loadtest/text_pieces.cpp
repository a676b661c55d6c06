#include "tools/loadtest/text_pieces.h"

#include "text/bpe_tokenizer.h"
#include "text/utf8.h"

namespace cosy::loadtest {
namespace {

// decode() marks bytes that end mid-character with U+FFFD.
bool ends_a_character(std::string_view decoded) {
  return decoded.find("\xEF\xBF\xBD") == std::string_view::npos;
}

// CJK ideographs, kana, Hangul and fullwidth forms: written without spaces, one or two
// characters per LLM token.
bool unspaced_script(UChar32 c) {
  return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFFEF) ||
         (c >= 0x20000 && c <= 0x3FFFF);
}

}  // namespace

std::vector<std::string> text_pieces(std::string_view text, const text::BpeTokenizer* tokenizer) {
  std::vector<std::string> pieces;
  if (tokenizer != nullptr) {
    const std::vector<int32_t> ids = tokenizer->encode(text);
    std::vector<int32_t> pending;
    for (const int32_t id : ids) {
      pending.push_back(id);
      std::string piece = tokenizer->decode(pending);
      // A character split across tokens joins the next (a U+FFFD in the text itself, after
      // four tokens).
      if (!ends_a_character(piece) && pending.size() < 4) continue;
      pieces.push_back(std::move(piece));
      pending.clear();
    }
    if (!pending.empty()) pieces.push_back(tokenizer->decode(pending));
    return pieces;
  }
  std::string word;
  text::for_each_code_point(text, [&](UChar32 c, size_t begin, size_t end) {
    const std::string_view ch = text.substr(begin, end - begin);
    if (unspaced_script(c)) {
      if (!word.empty()) pieces.push_back(std::move(word));
      word.clear();
      pieces.emplace_back(ch);
      return;
    }
    word += ch;
    if (c == ' ') {
      pieces.push_back(std::move(word));
      word.clear();
    }
  });
  if (!word.empty()) pieces.push_back(std::move(word));
  return pieces;
}

}  // namespace cosy::loadtest
