#include "text/number_scan.h"

namespace cosy::text {

NumberToken scan_number(std::string_view s, size_t at) {
  NumberToken t;
  t.begin = at;
  size_t i = digits_end(s, at);
  t.int_digits.assign(s.substr(at, i - at));
  if (i - at <= 3) {
    // ",ddd" groups, each exactly three digits.
    while (byte_at(s, i) == ',' && digits_end(s, i + 1) == i + 4) {
      t.int_digits.append(s.substr(i + 1, 3));
      t.grouped = true;
      i += 4;
    }
  }
  if (byte_at(s, i) == '.' && is_digit(byte_at(s, i + 1))) {
    const size_t frac_end = digits_end(s, i + 1);
    t.frac_digits.assign(s.substr(i + 1, frac_end - i - 1));
    i = frac_end;
  }
  t.end = i;
  return t;
}

std::optional<std::string_view> digits_of_length(std::string_view s, size_t at, size_t n,
                                                 size_t m) {
  const size_t len = digits_end(s, at) - at;
  if (len < n || len > m) return std::nullopt;
  return s.substr(at, len);
}

std::optional<int> small_value(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

size_t mark_at(std::string_view s, size_t at, std::initializer_list<std::string_view> marks) {
  for (std::string_view m : marks)
    if (starts(s, at, m)) return m.size();
  return 0;
}

bool word_at(std::string_view s, size_t at, std::string_view word) {
  return s.substr(at, word.size()) == word && !is_alpha(byte_at(s, at + word.size()));
}

}  // namespace cosy::text
