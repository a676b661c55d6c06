// One UTF-8 walk for the text layer: validates and yields each code point with its byte range.
#pragma once

#include <unicode/utf8.h>

#include <climits>
#include <cstddef>
#include <string_view>

#include "core/error.h"

namespace cosy::text {

// Calls fn(code_point, begin, end) for each code point of `text`; fails with the byte offset
// of the first invalid sequence.
template <typename Fn>
void for_each_code_point(std::string_view text, Fn&& fn) {
  if (text.size() > static_cast<size_t>(INT32_MAX))
    fail("text of ", text.size(), " bytes is too long");
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t n = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < n;) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0) fail("invalid UTF-8 at byte ", begin);
    fn(c, static_cast<size_t>(begin), static_cast<size_t>(i));
  }
}

inline void check_utf8(std::string_view text) {
  for_each_code_point(text, [](UChar32, size_t, size_t) {});
}

}  // namespace cosy::text
