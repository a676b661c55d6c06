#include "text/written_forms.h"

#include "text/number_scan.h"

namespace cosy::text {

std::string rewrite_written_forms(std::string_view text, ReadingRule rule, bool space_words) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  size_t i = 0;
  while (i < text.size()) {
    std::optional<Reading> r = rule(text, i);
    if (!r || r->end <= i) {
      out += text[i++];
      continue;
    }
    if (space_words && !out.empty() && is_alnum(out.back())) out += ' ';
    out += r->words;
    i = r->end;
    if (space_words && is_alnum(byte_at(text, i))) out += ' ';
  }
  return out;
}

}  // namespace cosy::text
