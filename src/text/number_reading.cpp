#include "text/number_reading.h"

#include <unicode/rbnf.h>
#include <unicode/unistr.h>

#include <array>
#include <memory>

#include "core/error.h"

namespace cosy::text {
namespace {

constexpr std::array<std::string_view, 10> kZhDigit = {"零", "一", "二", "三", "四",
                                                       "五", "六", "七", "八", "九"};

bool has_leading_zero(std::string_view digits) { return digits.size() > 1 && digits[0] == '0'; }

// One group of up to four digits (千百十个). A group's leading 2 before 百 or 千 reads "两";
// when the group starts the whole number (`starts_number`), a leading 1 before 十 is dropped
// ("十二", not "一十二").
std::string zh_group(std::string_view group, bool starts_number) {
  static constexpr std::array<std::string_view, 4> kPlace = {"千", "百", "十", ""};
  const size_t offset = 4 - group.size();
  std::string out;
  bool pending_zero = false;
  bool first = true;
  for (size_t i = 0; i < group.size(); ++i) {
    const int d = group[i] - '0';
    const size_t place = offset + i;
    if (d == 0) {
      pending_zero = !first;
      continue;
    }
    if (pending_zero) out += kZhDigit[0];
    pending_zero = false;
    if (first && starts_number && d == 1 && place == 2) {
      out += "十";  // 10–19
    } else if (first && d == 2 && (place == 0 || place == 1)) {
      out += "两";
      out += kPlace[place];
    } else {
      out += kZhDigit[static_cast<size_t>(d)];
      out += kPlace[place];
    }
    first = false;
  }
  return out;
}

// ICU's rule-based formatters are not documented as safe to share across threads; each
// thread that reads English numbers keeps its own.
const icu::RuleBasedNumberFormat& english_spellout() {
  thread_local std::unique_ptr<icu::RuleBasedNumberFormat> format = [] {
    UErrorCode status = U_ZERO_ERROR;
    auto f = std::make_unique<icu::RuleBasedNumberFormat>(icu::URBNF_SPELLOUT,
                                                          icu::Locale::getEnglish(), status);
    if (U_FAILURE(status)) fail("ICU has no English spell-out rules: ", u_errorName(status));
    return f;
  }();
  return *format;
}

std::string spell(std::string_view digits, const char* rule_set) {
  const auto value = static_cast<int64_t>(std::stoll(std::string(digits)));
  UErrorCode status = U_ZERO_ERROR;
  icu::UnicodeString out;
  icu::FieldPosition position;
  english_spellout().format(value, icu::UnicodeString(rule_set), out, position, status);
  if (U_FAILURE(status)) fail("ICU spell-out ", rule_set, " failed: ", u_errorName(status));
  std::string utf8;
  return out.toUTF8String(utf8);
}

constexpr size_t kEnglishMaxDigits = 15;

}  // namespace

std::string zh_digits(std::string_view digits, bool phone) {
  std::string out;
  for (char c : digits) {
    if (phone && c == '1') {
      out += "幺";
    } else {
      out += kZhDigit[static_cast<size_t>(c - '0')];
    }
  }
  return out;
}

std::string zh_integer(std::string_view digits) {
  if (digits.empty()) return {};
  if (has_leading_zero(digits) || digits.size() > 16) return zh_digits(digits);
  if (digits == "0") return std::string(kZhDigit[0]);
  // Groups of four from the right: 万 for the second, 亿 for the third, 万亿 for the fourth.
  static constexpr std::array<std::string_view, 4> kGroupUnit = {"", "万", "亿", "万亿"};
  const size_t groups = (digits.size() + 3) / 4;
  std::string out;
  // A whole group of zeros since the last output, or this group's own leading zeros, is
  // read as one 零; a zero that ends a group is carried by its unit (101000 → 十万一千).
  bool zero_gap = false;
  for (size_t g = 0; g < groups; ++g) {
    const size_t end = digits.size() - (groups - 1 - g) * 4;
    const size_t begin = g == 0 ? 0 : end - 4;
    const std::string_view group = digits.substr(begin, end - begin);
    if (group.find_first_not_of('0') == std::string_view::npos) {
      zero_gap = true;
      continue;
    }
    if (!out.empty() && (zero_gap || group[0] == '0')) out += kZhDigit[0];
    if (group == "2" && g + 1 < groups) {
      out += "两";  // 2万, 2亿
    } else {
      out += zh_group(group, g == 0);
    }
    out += kGroupUnit[groups - 1 - g];
    zero_gap = false;
  }
  return out;
}

std::string zh_decimal(std::string_view int_digits, std::string_view frac_digits) {
  std::string out = zh_integer(int_digits.empty() ? "0" : int_digits);
  if (frac_digits.empty()) return out;
  return out + "点" + zh_digits(frac_digits);
}

std::string en_cardinal(std::string_view digits) {
  if (digits.empty()) return {};
  if (has_leading_zero(digits) || digits.size() > kEnglishMaxDigits) return en_digits(digits);
  return spell(digits, "%spellout-cardinal");
}

std::string en_ordinal(std::string_view digits) {
  if (digits.empty()) return {};
  if (has_leading_zero(digits) || digits.size() > kEnglishMaxDigits) return en_digits(digits);
  return spell(digits, "%spellout-ordinal");
}

std::string en_year(std::string_view digits) {
  if (digits.empty()) return {};
  if (has_leading_zero(digits) || digits.size() > 4) return en_cardinal(digits);
  return spell(digits, "%spellout-numbering-year");
}

std::string en_digits(std::string_view digits) {
  static constexpr std::array<std::string_view, 10> kDigit = {
      "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  std::string out;
  for (char c : digits) {
    if (!out.empty()) out += ' ';
    out += kDigit[static_cast<size_t>(c - '0')];
  }
  return out;
}

std::string en_decimal(std::string_view int_digits, std::string_view frac_digits) {
  std::string out = en_cardinal(int_digits.empty() ? "0" : int_digits);
  if (frac_digits.empty()) return out;
  return out + " point " + en_digits(frac_digits);
}

std::string en_plural(std::string word) {
  if (word.ends_with("y")) return word.substr(0, word.size() - 1) + "ies";
  if (word.ends_with("x") || word.ends_with("s")) return word + "es";
  return word + "s";
}

}  // namespace cosy::text
