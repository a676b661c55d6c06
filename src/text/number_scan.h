// Small ASCII scanners shared by the written-form verbalisers: where a number starts and
// ends, what surrounds it. All of them work on byte offsets into valid UTF-8, where every
// byte below 0x80 is a whole character.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace cosy::text {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }

inline char byte_at(std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; }

// The end of the run of ASCII digits starting at `at`.
inline size_t digits_end(std::string_view s, size_t at) {
  while (at < s.size() && is_digit(s[at])) ++at;
  return at;
}

// A written number: "42", "1,234,567", "3.14", "1,234.5".
struct NumberToken {
  size_t begin = 0, end = 0;  // byte range
  std::string int_digits;     // without the group separators
  std::string frac_digits;    // after the point; empty when there is none
  bool grouped = false;       // had thousands separators
  bool is_integer() const { return frac_digits.empty(); }
  // Exactly this integer, written without separators ("1", but not "1.0" or "01").
  bool equals(std::string_view digits) const { return is_integer() && int_digits == digits; }
};

// The number starting at the digit `at`. Thousands separators count only as ",ddd" groups
// after a first run of 1–3 digits; a point counts only when a digit follows it.
NumberToken scan_number(std::string_view s, size_t at);

// The run of digits at `at` when its length is between n and m, else nullopt.
std::optional<std::string_view> digits_of_length(std::string_view s, size_t at, size_t n, size_t m);

// The integer value of up to 9 digits, or nullopt for an empty or longer string.
std::optional<int> small_value(std::string_view digits);

// `with` at byte `at`.
inline bool starts(std::string_view s, size_t at, std::string_view with) {
  return s.substr(at, with.size()) == with;
}

// The byte length of the first of `marks` found at `at` (an ASCII sign or its full-width
// or typographic twin: ":" or "：", "%" or "％"), 0 for none.
size_t mark_at(std::string_view s, size_t at, std::initializer_list<std::string_view> marks);

// `word` at `at`, case-sensitive, and not followed by an ASCII letter.
bool word_at(std::string_view s, size_t at, std::string_view word);

}  // namespace cosy::text
