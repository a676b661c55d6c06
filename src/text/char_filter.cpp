#include "text/char_filter.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "text/utf8.h"

namespace cosy::text {
namespace {

bool unspeakable(UChar32 c) {
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_SURROGATE:
      return true;
    default:
      break;
  }
  if (u_hasBinaryProperty(c, UCHAR_EXTENDED_PICTOGRAPHIC) != 0) return true;
  if (u_hasBinaryProperty(c, UCHAR_EMOJI_MODIFIER) != 0) return true;
  if (u_hasBinaryProperty(c, UCHAR_REGIONAL_INDICATOR) != 0) return true;
  // Variation selectors and the keycap mark only dress up emoji.
  return (c >= 0xFE00 && c <= 0xFE0F) || c == 0x20E3;
}

// Full-width ASCII variants (U+FF01–FF5E) map onto U+0021–007E.
constexpr UChar32 kFullWidthFirst = 0xFF01, kFullWidthLast = 0xFF5E, kFullWidthShift = 0xFEE0;

bool full_width_alnum(UChar32 c) {
  return (c >= 0xFF10 && c <= 0xFF19) ||  // ０-９
         (c >= 0xFF21 && c <= 0xFF3A) ||  // Ａ-Ｚ
         (c >= 0xFF41 && c <= 0xFF5A) ||  // ａ-ｚ
         c == 0xFF05;                     // ％
}

}  // namespace

std::string clean_characters(std::string_view text, bool chinese) {
  std::string out;
  out.reserve(text.size());
  UChar32 previous = 0;
  bool dropped = false;  // since the last character kept
  for_each_code_point(text, [&](UChar32 c, size_t begin, size_t end) {
    const UChar32 was = previous;
    previous = c;
    // "a 👍 b" → "a b": a removed character leaves no double space behind.
    if (c == ' ' && dropped && !out.empty() && out.back() == ' ') return;
    const bool drop = unspeakable(c) && c != '\n' && c != '\r' && c != '\t';
    dropped = drop;
    if (drop) return;
    if (c == '\n') {
      if (was != '\r') out += '\n';
      return;
    }
    if (c == '\r') {
      out += '\n';
      return;
    }
    if (c == '\t' || c == 0x3000) {
      out += ' ';
      return;
    }
    if (c >= kFullWidthFirst && c <= kFullWidthLast && (!chinese || full_width_alnum(c))) {
      out += static_cast<char>(c - kFullWidthShift);
      return;
    }
    out.append(text.substr(begin, end - begin));
  });
  return out;
}

}  // namespace cosy::text
