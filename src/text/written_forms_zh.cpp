// Chinese written forms → words. Each reader returns nullopt when its form is not at `at`.
#include <algorithm>
#include <array>
#include <vector>

#include "text/number_reading.h"
#include "text/number_scan.h"
#include "text/written_forms.h"

namespace cosy::text {
namespace {

struct Unit {
  std::string_view written, spoken;
};

// Units read after a number. Deliberately absent: "s" and "t" (too often part of a name,
// as in "4s店"), and byte units (GB, MB), which Chinese speakers read as letters.
const std::vector<Unit>& units() {
  static const std::vector<Unit> kUnits = [] {
    std::vector<Unit> u = {{"km/h", "千米每小时"},
                           {"m/s", "米每秒"},
                           {"km²", "平方千米"},
                           {"cm²", "平方厘米"},
                           {"m²", "平方米"},
                           {"cm³", "立方厘米"},
                           {"m³", "立方米"},
                           {"km", "千米"},
                           {"kg", "千克"},
                           {"mg", "毫克"},
                           {"g", "克"},
                           {"cm", "厘米"},
                           {"mm", "毫米"},
                           {"m", "米"},
                           {"ml", "毫升"},
                           {"mL", "毫升"},
                           {"L", "升"},
                           {"h", "小时"},
                           {"min", "分钟"},
                           {"ms", "毫秒"},
                           {"℃", "摄氏度"},
                           {"°C", "摄氏度"},
                           {"°F", "华氏度"},
                           {"°", "度"},
                           {"kWh", "千瓦时"},
                           {"kW", "千瓦"},
                           {"W", "瓦"},
                           {"V", "伏"},
                           {"mAh", "毫安时"},
                           {"kHz", "千赫兹"},
                           {"MHz", "兆赫兹"},
                           {"GHz", "吉赫兹"},
                           {"Hz", "赫兹"},
                           {"mi", "英里"},
                           {"ft", "英尺"},
                           {"lb", "磅"}};
    // Longest first, so "min" wins over "m" and "°C" over "°".
    std::stable_sort(u.begin(), u.end(), [](const Unit& a, const Unit& b) {
      return a.written.size() > b.written.size();
    });
    return u;
  }();
  return kUnits;
}

// A unit right after a number, or after one space; not followed by more letters or digits.
std::optional<Reading> unit_at(std::string_view s, size_t at) {
  const size_t i = byte_at(s, at) == ' ' ? at + 1 : at;
  for (const Unit& u : units()) {
    if (!starts(s, i, u.written)) continue;
    const size_t end = i + u.written.size();
    if (is_alnum(byte_at(s, end))) continue;
    return Reading{end, std::string(u.spoken)};
  }
  return std::nullopt;
}

std::string read(const NumberToken& t) {
  return t.is_integer() ? zh_integer(t.int_digits) : zh_decimal(t.int_digits, t.frac_digits);
}

// Counting words after which a lone 2 reads 两: "2个" → "两个".
bool classifier_at(std::string_view s, size_t at) {
  static constexpr std::array<std::string_view, 28> kClassifiers = {
      "个", "只", "位", "件", "本", "张", "条", "次", "天", "种", "块", "台", "辆", "名",
      "家", "岁", "倍", "周", "点", "斤", "瓶", "杯", "碗", "双", "对", "份", "层", "部"};
  return std::any_of(kClassifiers.begin(), kClassifiers.end(),
                     [&](std::string_view c) { return starts(s, at, c); });
}

// 2024-03-05, 2024/3/5, 2024.3.5 → 二零二四年三月五日
std::optional<Reading> date(std::string_view s, size_t at) {
  const auto year = digits_of_length(s, at, 4, 4);
  if (!year) return std::nullopt;
  const char sep = byte_at(s, at + 4);
  if (sep != '-' && sep != '/' && sep != '.') return std::nullopt;
  const auto month = digits_of_length(s, at + 5, 1, 2);
  if (!month || byte_at(s, at + 5 + month->size()) != sep) return std::nullopt;
  const size_t day_at = at + 6 + month->size();
  const auto day = digits_of_length(s, day_at, 1, 2);
  if (!day) return std::nullopt;
  const int m = *small_value(*month), d = *small_value(*day);
  if (m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
  return Reading{day_at + day->size(), zh_digits(*year) + "年" + zh_integer(std::to_string(m)) +
                                           "月" + zh_integer(std::to_string(d)) + "日"};
}

// A four-digit year before 年 is read digit by digit: 2024年 → 二零二四年
std::optional<Reading> year(std::string_view s, size_t at) {
  const auto digits = digits_of_length(s, at, 4, 4);
  if (!digits || !starts(s, at + 4, "年")) return std::nullopt;
  return Reading{at + 4, zh_digits(*digits)};
}

size_t colon_at(std::string_view s, size_t at) { return mark_at(s, at, {":", "："}); }

// 10:30 → 十点三十分, 9:05:20 → 九点零五分二十秒, 2:00 → 两点; other a:b → a比b (scores).
std::optional<Reading> time_or_ratio(std::string_view s, size_t at) {
  const auto hour = digits_of_length(s, at, 1, 2);
  if (!hour) return std::nullopt;
  size_t i = at + hour->size();
  const size_t colon = colon_at(s, i);
  if (colon == 0) return std::nullopt;
  i += colon;
  const auto minute = digits_of_length(s, i, 1, 2);
  if (!minute) return std::nullopt;
  const int h = *small_value(*hour), m = *small_value(*minute);
  if (minute->size() != 2 || h > 24 || m > 59) {
    return Reading{i + minute->size(), zh_integer(*hour) + "比" + zh_integer(*minute)};
  }
  i += 2;
  // Minutes and seconds below ten keep their zero: 9:05 → 九点零五分.
  const auto sixty = [](int v) {
    return (v < 10 ? std::string("零") : std::string()) +
           (v == 0 ? std::string() : zh_integer(std::to_string(v)));
  };
  std::string words = (h == 2 ? std::string("两") : zh_integer(std::to_string(h))) + "点";
  int sec = 0;
  const size_t c2 = colon_at(s, i);
  if (c2 != 0) {
    const auto second = digits_of_length(s, i + c2, 2, 2);
    if (second && *small_value(*second) < 60) {
      sec = *small_value(*second);
      i += c2 + 2;
    }
  }
  if (m != 0 || sec != 0) words += sixty(m) + "分";
  if (sec != 0) words += sixty(sec) + "秒";
  return Reading{i, words};
}

// Phone numbers, digit by digit with 1 as 幺: a mobile 13812345678 (or 138-1234-5678),
// a landline 010-12345678, a service number 400-123-4567.
std::optional<Reading> phone(std::string_view s, size_t at) {
  std::vector<std::string_view> groups;
  size_t i = at;
  for (;;) {
    const size_t end = digits_end(s, i);
    groups.push_back(s.substr(i, end - i));
    i = end;
    if (groups.size() == 4 || byte_at(s, i) != '-' || !is_digit(byte_at(s, i + 1))) break;
    ++i;
  }
  const auto mobile = [](std::string_view g) {
    return g.size() >= 2 && g[0] == '1' && g[1] >= '3' && g[1] <= '9';
  };
  size_t total = 0;
  for (auto g : groups) total += g.size();
  const bool is_phone = (groups.size() == 1 && groups[0].size() == 11 && mobile(groups[0])) ||
                        (groups.size() == 3 && groups[0].size() == 3 && groups[1].size() == 4 &&
                         groups[2].size() == 4 && mobile(groups[0])) ||
                        (groups.size() == 3 && groups[0].size() == 3 && groups[1].size() == 3 &&
                         groups[2].size() == 4) ||
                        (groups.size() == 2 && groups[0][0] == '0' && groups[0].size() >= 3 &&
                         groups[0].size() <= 4 && groups[1].size() >= 7 && groups[1].size() <= 8);
  if (!is_phone || total > 15) return std::nullopt;
  std::string words;
  for (auto g : groups) words += zh_digits(g, /*phone=*/true);
  return Reading{i, words};
}

// 3/4 → 四分之三
std::optional<Reading> fraction(std::string_view s, size_t at) {
  const auto num = digits_of_length(s, at, 1, 6);
  if (!num || byte_at(s, at + num->size()) != '/') return std::nullopt;
  const size_t den_at = at + num->size() + 1;
  const auto den = digits_of_length(s, den_at, 1, 6);
  if (!den || *small_value(*den) == 0) return std::nullopt;
  return Reading{den_at + den->size(), zh_integer(*den) + "分之" + zh_integer(*num)};
}

size_t percent_sign_at(std::string_view s, size_t at) { return mark_at(s, at, {"%", "％"}); }

size_t range_dash_at(std::string_view s, size_t at) {
  return mark_at(s, at, {"-", "~", "～", "—", "–"});
}

// A number, or a range a-b / a~b, then a percent sign or a unit if one follows:
// 50% → 百分之五十, 3-5kg → 三到五千克, 1,234.5 → 一千二百三十四点五, 2个 → 两个.
Reading quantity(std::string_view s, size_t at) {
  const NumberToken first = scan_number(s, at);
  // A percent sign may also close the first number of a range: 10%-20%.
  const size_t first_percent = percent_sign_at(s, first.end);
  std::optional<NumberToken> second;
  const size_t after_first = first.end + first_percent;
  if (const size_t dash = range_dash_at(s, after_first);
      dash != 0 && is_digit(byte_at(s, after_first + dash))) {
    second = scan_number(s, after_first + dash);
  }
  const size_t end = second ? second->end : first.end;
  if (const size_t percent = percent_sign_at(s, end); percent != 0) {
    std::string words = "百分之" + read(first);
    if (second) words += "到百分之" + read(*second);
    return Reading{end + percent, words};
  }
  if (first_percent != 0) return Reading{after_first, "百分之" + read(first)};
  std::string words = read(first);
  if (second) words += "到" + read(*second);
  if (const auto unit = unit_at(s, end)) return Reading{unit->end, words + unit->words};
  const bool ordinal = at >= 3 && starts(s, at - 3, "第");  // 第2名 stays 第二名
  if (!second && first.equals("2") && classifier_at(s, end) && !ordinal) words = "两";
  return Reading{end, words};
}

// ¥100 / ￥100 → 一百元, $5 → 五美元, €2.5万 → 二点五万欧元, £3 → 三英镑
std::optional<Reading> money(std::string_view s, size_t at) {
  static constexpr std::array<Unit, 5> kCurrencies = {
      {{"$", "美元"}, {"¥", "元"}, {"￥", "元"}, {"€", "欧元"}, {"£", "英镑"}}};
  for (const Unit& c : kCurrencies) {
    if (!starts(s, at, c.written)) continue;
    size_t i = at + c.written.size();
    if (byte_at(s, i) == ' ') ++i;
    if (!is_digit(byte_at(s, i))) return std::nullopt;
    const NumberToken amount = scan_number(s, i);
    std::string words = read(amount);
    i = amount.end;
    for (std::string_view scale : {"万亿", "亿", "万", "千", "百"}) {
      if (starts(s, i, scale)) {
        words += scale;
        i += scale.size();
        break;
      }
    }
    return Reading{i, words + std::string(c.spoken)};
  }
  return std::nullopt;
}

bool follows_word(std::string_view s, size_t at) { return at > 0 && is_alnum(s[at - 1]); }

std::optional<Reading> chinese_rule(std::string_view s, size_t at) {
  const char c = s[at];
  if (is_digit(c)) {
    for (auto rule : {date, phone, time_or_ratio, fraction, year})
      if (auto r = rule(s, at)) return r;
    return quantity(s, at);
  }
  // -5 → 负五, −5 → 负五 (a sign, not a hyphen inside a word)
  if (const size_t sign = mark_at(s, at, {"-", "−"});
      sign != 0 && is_digit(byte_at(s, at + sign)) && !follows_word(s, at)) {
    Reading r = quantity(s, at + sign);
    r.words = "负" + r.words;
    return r;
  }
  // +86 → 加八六 (a country code)
  if (c == '+' && is_digit(byte_at(s, at + 1)) && !follows_word(s, at)) {
    const size_t end = digits_end(s, at + 1);
    return Reading{end, "加" + zh_digits(s.substr(at + 1, end - at - 1))};
  }
  return money(s, at);
}

}  // namespace

std::string verbalize_chinese(std::string_view text) {
  return rewrite_written_forms(text, chinese_rule, /*space_words=*/false);
}

}  // namespace cosy::text
