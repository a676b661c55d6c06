#include "text/pretokenizer.h"

#include <unicode/uchar.h>

#include "text/utf8.h"

namespace cosy::text {
namespace {

enum Class : uint8_t { kLetter, kNumber, kSpace, kNewline, kOther };

struct CodePoint {
  UChar32 c;
  size_t begin;  // byte offset
  Class cls;
};

Class classify(UChar32 c) {
  if (c == '\r' || c == '\n') return kNewline;
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return kLetter;
  if (mask & U_GC_N_MASK) return kNumber;
  if (u_isUWhiteSpace(c)) return kSpace;
  return kOther;
}

std::vector<CodePoint> decode(std::string_view text) {
  std::vector<CodePoint> out;
  out.reserve(text.size());
  for_each_code_point(text, [&](UChar32 c, size_t begin, size_t) {
    out.push_back({c, begin, classify(c)});
  });
  return out;
}

bool is_space(Class c) { return c == kSpace || c == kNewline; }

char ascii_lower(UChar32 c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
}

// Length in code points of the contraction at i ('s 't 're 've 'm 'll 'd, any case), or 0.
size_t contraction(const std::vector<CodePoint>& cp, size_t i) {
  if (cp[i].c != '\'' || i + 1 >= cp.size()) return 0;
  const char a = ascii_lower(cp[i + 1].c);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= cp.size()) return 0;
  const char b = ascii_lower(cp[i + 2].c);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The end (in code points) of the regex's match starting at i.
size_t match_end(const std::vector<CodePoint>& cp, size_t i) {
  const size_t n = cp.size();
  auto run = [&](size_t j, auto pred) {
    while (j < n && pred(cp[j].cls)) ++j;
    return j;
  };
  // 1. contractions
  if (size_t len = contraction(cp, i)) return i + len;
  // 2. [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t j = i;
    if (cp[j].cls == kSpace || cp[j].cls == kOther) ++j;
    if (j < n && cp[j].cls == kLetter) return run(j, [](Class c) { return c == kLetter; });
    if (cp[i].cls == kLetter) return run(i, [](Class c) { return c == kLetter; });
  }
  // 3. \p{N}
  if (cp[i].cls == kNumber) return i + 1;
  // 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t j = i;
    if (cp[j].c == ' ') ++j;
    if (j < n && cp[j].cls == kOther) {
      j = run(j, [](Class c) { return c == kOther; });
      return run(j, [](Class c) { return c == kNewline; });
    }
  }
  // 5-7. whitespace runs
  const size_t end = run(i, is_space);
  // 5. \s*[\r\n]+ : up to and including the last newline in the run
  for (size_t k = end; k-- > i;) {
    if (cp[k].cls == kNewline) return k + 1;
  }
  // 6. \s+(?!\S) : the run, less its last character when a non-space follows
  if (end == n) return end;
  if (end - i >= 2) return end - 1;
  // 7. \s+
  return end;
}

}  // namespace

std::vector<std::string_view> pretokenize(std::string_view text) {
  const std::vector<CodePoint> cp = decode(text);
  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < cp.size()) {
    const size_t end = match_end(cp, i);
    const size_t b = cp[i].begin;
    const size_t e = end < cp.size() ? cp[end].begin : text.size();
    pieces.push_back(text.substr(b, e - b));
    i = end;
  }
  return pieces;
}

}  // namespace cosy::text
