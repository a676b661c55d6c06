// English written forms → words. Each reader returns nullopt when its form is not at `at`.
#include <algorithm>
#include <array>
#include <vector>

#include "text/number_reading.h"
#include "text/number_scan.h"
#include "text/written_forms.h"

namespace cosy::text {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

// 1–12 for a month name or its usual abbreviation ("Mar", "Sept"), any case of the first
// letter; 0 otherwise.
int month_number(std::string_view word) {
  if (word.size() < 3) return 0;
  for (size_t m = 0; m < kMonths.size(); ++m) {
    const std::string_view name = kMonths[m];
    if (word.size() > name.size() || word.substr(1) != name.substr(1, word.size() - 1)) continue;
    if ((word[0] | 0x20) != (name[0] | 0x20)) continue;
    if (word.size() == name.size() || word.size() == 3 || (m == 8 && word == "Sept"))
      return static_cast<int>(m) + 1;
  }
  return 0;
}

// The word (ASCII letters) that ends right before `at`, skipping spaces, one comma or a
// period; empty if digits or anything else come first. `begin` receives where it starts.
std::string_view word_before(std::string_view s, size_t at, size_t* begin = nullptr) {
  size_t i = at;
  while (i > 0 && s[i - 1] == ' ') --i;
  if (i > 0 && (s[i - 1] == ',' || s[i - 1] == '.')) --i;
  const size_t end = i;
  while (i > 0 && is_alpha(s[i - 1])) --i;
  if (begin != nullptr) *begin = i;
  return s.substr(i, end - i);
}

// The number just before `at` ("March 5, 2024": the 5 before the year), if it follows a
// month name.
bool after_month_and_day(std::string_view s, size_t at) {
  size_t i = at;
  while (i > 0 && s[i - 1] == ' ') --i;
  if (i == 0 || s[i - 1] != ',') return false;
  --i;
  size_t d = i;
  while (d > 0 && is_digit(s[d - 1])) --d;
  if (d == i || i - d > 2) return false;
  return month_number(word_before(s, d)) != 0;
}

// A four-digit number read as a year: after a month name ("March 2024"), after a month and
// day ("March 5, 2024"), or after a word that introduces a year ("in 1998", "since 2001").
bool year_context(std::string_view s, size_t at) {
  static constexpr std::array<std::string_view, 13> kYearWords = {
      "in",     "In",    "since", "Since",  "by",    "By",  "until",
      "before", "after", "year",  "during", "circa", "from"};
  const std::string_view prev = word_before(s, at);
  if (month_number(prev) != 0 || after_month_and_day(s, at)) return true;
  return std::find(kYearWords.begin(), kYearWords.end(), prev) != kYearWords.end();
}

bool is_year(const NumberToken& t) {
  if (!t.is_integer() || t.grouped || t.int_digits.size() != 4) return false;
  const int v = *small_value(t.int_digits);
  return v >= 1000 && v <= 2099;
}

std::string spoken_date(int month, std::string_view day, std::string_view year) {
  return std::string(kMonths[static_cast<size_t>(month - 1)]) + " " +
         en_ordinal(std::to_string(*small_value(day))) + ", " + en_year(year);
}

// 2024-03-05 or 2024/03/05 (ISO order) and 03/05/2024 (US order) →
// "March fifth, twenty twenty-four"
std::optional<Reading> date(std::string_view s, size_t at) {
  const auto a = digits_of_length(s, at, 1, 4);
  if (!a) return std::nullopt;
  const char sep = byte_at(s, at + a->size());
  if (sep != '-' && sep != '/') return std::nullopt;
  const size_t b_at = at + a->size() + 1;
  const auto b = digits_of_length(s, b_at, 1, 2);
  if (!b || byte_at(s, b_at + b->size()) != sep) return std::nullopt;
  const size_t c_at = b_at + b->size() + 1;
  const auto c = digits_of_length(s, c_at, 1, 4);
  if (!c) return std::nullopt;
  const size_t end = c_at + c->size();
  const int bv = *small_value(*b), cv = *small_value(*c);
  if (a->size() == 4 && c->size() <= 2 && bv >= 1 && bv <= 12 && cv >= 1 && cv <= 31)
    return Reading{end, spoken_date(bv, *c, *a)};
  const int av = *small_value(*a);
  if (sep == '/' && a->size() <= 2 && c->size() == 4 && av >= 1 && av <= 12 && bv >= 1 && bv <= 31)
    return Reading{end, spoken_date(av, *b, *c)};
  return std::nullopt;
}

// " am", "pm", " a.m.", " PM" after a time or an hour → " a m" / " p m".
std::optional<Reading> meridiem(std::string_view s, size_t at) {
  const size_t i = byte_at(s, at) == ' ' ? at + 1 : at;
  for (std::string_view form : {"a.m.", "p.m.", "A.M.", "P.M.", "am", "pm", "AM", "PM"}) {
    if (!word_at(s, i, form)) continue;
    return Reading{i + form.size(), (form[0] | 0x20) == 'a' ? "a m" : "p m"};
  }
  return std::nullopt;
}

// 10:30 → "ten thirty", 9:05 → "nine oh five", 7:00 → "seven o'clock", 7:00 pm → "seven p m",
// 10:30:15 → "ten thirty and fifteen seconds"
std::optional<Reading> clock_time(std::string_view s, size_t at) {
  const auto hour = digits_of_length(s, at, 1, 2);
  if (!hour || byte_at(s, at + hour->size()) != ':') return std::nullopt;
  size_t i = at + hour->size() + 1;
  const auto minute = digits_of_length(s, i, 2, 2);
  if (!minute) return std::nullopt;
  const int h = *small_value(*hour), m = *small_value(*minute);
  if (h > 24 || m > 59) return std::nullopt;
  i += 2;
  int sec = -1;
  if (byte_at(s, i) == ':') {
    if (const auto second = digits_of_length(s, i + 1, 2, 2);
        second && *small_value(*second) < 60) {
      sec = *small_value(*second);
      i += 3;
    }
  }
  std::string words = en_cardinal(std::to_string(h));
  const auto am_pm = meridiem(s, i);
  if (m == 0 && !am_pm && sec <= 0) words += " o'clock";
  if (m != 0) words += (m < 10 ? " oh " : " ") + en_cardinal(std::to_string(m));
  if (sec > 0)
    words += " and " + en_cardinal(std::to_string(sec)) + (sec == 1 ? " second" : " seconds");
  if (am_pm) {
    words += " " + am_pm->words;
    i = am_pm->end;
  }
  return Reading{i, words};
}

// 555-123-4567, 555.123.4567, 1-800-555-1234, (555) 123-4567 → digit groups:
// "five five five, one two three, four five six seven"
std::optional<Reading> phone(std::string_view s, size_t at) {
  std::vector<std::string_view> groups;
  size_t i = at;
  const bool parenthesised = byte_at(s, at) == '(';
  if (parenthesised) {
    const auto area = digits_of_length(s, at + 1, 3, 3);
    if (!area || byte_at(s, at + 4) != ')') return std::nullopt;
    groups.push_back(*area);
    i = at + 5;
    if (byte_at(s, i) == ' ') ++i;
    if (!is_digit(byte_at(s, i))) return std::nullopt;
  }
  char sep = 0;
  for (;;) {
    const size_t end = digits_end(s, i);
    groups.push_back(s.substr(i, end - i));
    i = end;
    const char c = byte_at(s, i);
    if (groups.size() == 4 || (c != '-' && c != '.') || (sep != 0 && c != sep) ||
        !is_digit(byte_at(s, i + 1)))
      break;
    sep = c;
    ++i;
  }
  std::vector<size_t> sizes;
  for (auto g : groups) sizes.push_back(g.size());
  const bool is_phone = sizes == std::vector<size_t>{3, 3, 4} ||
                        (sizes == std::vector<size_t>{1, 3, 3, 4} && groups[0] == "1");
  if (!is_phone) return std::nullopt;
  std::string words;
  for (auto g : groups) words += (words.empty() ? "" : ", ") + en_digits(g);
  return Reading{i, words};
}

// 1st, 22nd, 3rd, 15th → "first", "twenty-second", ...
std::optional<Reading> ordinal(std::string_view s, size_t at) {
  const size_t end = digits_end(s, at);
  for (std::string_view suffix : {"st", "nd", "rd", "th"}) {
    if (word_at(s, end, suffix)) return Reading{end + 2, en_ordinal(s.substr(at, end - at))};
  }
  return std::nullopt;
}

// 1990s → "nineteen nineties", 80s / 80's → "eighties"
std::optional<Reading> decade(std::string_view s, size_t at) {
  const size_t end = digits_end(s, at);
  const size_t n = end - at;
  if ((n != 2 && n != 4) || s[end - 1] != '0') return std::nullopt;
  size_t suffix = 0;
  if (word_at(s, end, "s")) suffix = 1;
  if (word_at(s, end, "'s")) suffix = 2;
  if (suffix == 0) return std::nullopt;
  const std::string_view digits = s.substr(at, n);
  std::string words = n == 4 ? en_year(digits) : en_cardinal(digits);
  return Reading{end + suffix, en_plural(std::move(words))};
}

// 1/2 → "one half", 3/4 → "three quarters", 2/3 → "two thirds"
std::optional<Reading> fraction(std::string_view s, size_t at) {
  const auto num = digits_of_length(s, at, 1, 3);
  if (!num || byte_at(s, at + num->size()) != '/') return std::nullopt;
  const size_t den_at = at + num->size() + 1;
  const auto den = digits_of_length(s, den_at, 1, 2);
  if (!den || byte_at(s, den_at + den->size()) == '/') return std::nullopt;
  const int d = *small_value(*den);
  if (d < 2) return std::nullopt;
  const bool one = *small_value(*num) == 1;
  std::string part = d == 2 ? "half" : d == 4 ? "quarter" : en_ordinal(*den);
  if (!one) part = d == 2 ? "halves" : en_plural(std::move(part));
  return Reading{den_at + den->size(), en_cardinal(*num) + " " + part};
}

struct Unit {
  std::string_view written, one, many;
};

const std::vector<Unit>& units() {
  static const std::vector<Unit> kUnits = [] {
    std::vector<Unit> u = {{"km/h", "kilometer per hour", "kilometers per hour"},
                           {"mph", "mile per hour", "miles per hour"},
                           {"m/s", "meter per second", "meters per second"},
                           {"km²", "square kilometer", "square kilometers"},
                           {"m²", "square meter", "square meters"},
                           {"m³", "cubic meter", "cubic meters"},
                           {"kg", "kilogram", "kilograms"},
                           {"mg", "milligram", "milligrams"},
                           {"g", "gram", "grams"},
                           {"km", "kilometer", "kilometers"},
                           {"cm", "centimeter", "centimeters"},
                           {"mm", "millimeter", "millimeters"},
                           {"m", "meter", "meters"},
                           {"mi", "mile", "miles"},
                           {"ft", "foot", "feet"},
                           {"lb", "pound", "pounds"},
                           {"lbs", "pound", "pounds"},
                           {"oz", "ounce", "ounces"},
                           {"ml", "milliliter", "milliliters"},
                           {"mL", "milliliter", "milliliters"},
                           {"L", "liter", "liters"},
                           {"h", "hour", "hours"},
                           {"hr", "hour", "hours"},
                           {"hrs", "hour", "hours"},
                           {"min", "minute", "minutes"},
                           {"ms", "millisecond", "milliseconds"},
                           {"kWh", "kilowatt hour", "kilowatt hours"},
                           {"kW", "kilowatt", "kilowatts"},
                           {"W", "watt", "watts"},
                           {"V", "volt", "volts"},
                           {"mAh", "milliamp hour", "milliamp hours"},
                           {"Hz", "hertz", "hertz"},
                           {"kHz", "kilohertz", "kilohertz"},
                           {"MHz", "megahertz", "megahertz"},
                           {"GHz", "gigahertz", "gigahertz"},
                           {"KB", "kilobyte", "kilobytes"},
                           {"MB", "megabyte", "megabytes"},
                           {"GB", "gigabyte", "gigabytes"},
                           {"TB", "terabyte", "terabytes"},
                           {"°C", "degree Celsius", "degrees Celsius"},
                           {"℃", "degree Celsius", "degrees Celsius"},
                           {"°F", "degree Fahrenheit", "degrees Fahrenheit"},
                           {"°", "degree", "degrees"},
                           {"%", "percent", "percent"},
                           {"％", "percent", "percent"}};
    std::stable_sort(u.begin(), u.end(), [](const Unit& a, const Unit& b) {
      return a.written.size() > b.written.size();
    });
    return u;
  }();
  return kUnits;
}

// A unit right after a number or after one space, not followed by more letters or digits.
// The percent sign only binds directly.
std::optional<Reading> unit_at(std::string_view s, size_t at, bool singular) {
  for (const Unit& u : units()) {
    for (size_t i : {at, at + 1}) {
      if (i == at + 1 && (byte_at(s, at) != ' ' || u.one == "percent")) continue;
      if (!starts(s, i, u.written)) continue;
      const size_t end = i + u.written.size();
      if (is_alnum(byte_at(s, end))) continue;
      return Reading{end, std::string(singular ? u.one : u.many)};
    }
  }
  return std::nullopt;
}

std::string read(const NumberToken& t) {
  return t.is_integer() ? en_cardinal(t.int_digits) : en_decimal(t.int_digits, t.frac_digits);
}

// A number or a range a-b, with its unit if one follows: 42 → "forty-two",
// 1,234.5 → "one thousand two hundred thirty-four point five", 5-10 kg → "five to ten
// kilograms", 50% → "fifty percent", 5 pm → "five p m"; a year in year context, a day
// after a month name ("March 5" → "March fifth").
Reading quantity(std::string_view s, size_t at) {
  const NumberToken first = scan_number(s, at);
  std::optional<NumberToken> second;
  if (byte_at(s, first.end) == '-' && is_digit(byte_at(s, first.end + 1)))
    second = scan_number(s, first.end + 1);
  const size_t end = second ? second->end : first.end;
  const bool years = is_year(first) && (second ? is_year(*second) : year_context(s, at)) &&
                     !unit_at(s, end, false);
  std::string words;
  if (years) {
    words = en_year(first.int_digits);
    if (second) words += " to " + en_year(second->int_digits);
    return Reading{end, words};
  }
  const bool day_of_month = !second && first.is_integer() && first.int_digits.size() <= 2 &&
                            month_number(word_before(s, at)) != 0 &&
                            *small_value(first.int_digits) >= 1 &&
                            *small_value(first.int_digits) <= 31;
  if (day_of_month) return Reading{end, en_ordinal(first.int_digits)};
  words = read(first);
  if (second) words += " to " + read(*second);
  const NumberToken& last = second ? *second : first;
  if (const auto am_pm = meridiem(s, end); am_pm && first.is_integer() && !second)
    return Reading{am_pm->end, words + " " + am_pm->words};
  if (const auto unit = unit_at(s, end, last.equals("1")))
    return Reading{unit->end, words + " " + unit->words};
  return Reading{end, words};
}

struct Currency {
  std::string_view symbol, one, many, cent_one, cent_many;
};

// $5 → "five dollars", $1.50 → "one dollar and fifty cents", $0.99 → "ninety-nine cents",
// £2 → "two pounds", €3.5 million → "three point five million euros", ¥100 → "one hundred yen"
std::optional<Reading> money(std::string_view s, size_t at) {
  static constexpr std::array<Currency, 4> kCurrencies = {
      {{"$", "dollar", "dollars", "cent", "cents"},
       {"£", "pound", "pounds", "penny", "pence"},
       {"€", "euro", "euros", "cent", "cents"},
       {"¥", "yen", "yen", "", ""}}};
  for (const Currency& c : kCurrencies) {
    if (!starts(s, at, c.symbol)) continue;
    const size_t i = at + c.symbol.size();
    if (!is_digit(byte_at(s, i))) return std::nullopt;
    const NumberToken amount = scan_number(s, i);
    size_t end = amount.end;
    for (std::string_view scale : {"thousand", "million", "billion", "trillion"}) {
      if (byte_at(s, end) == ' ' && word_at(s, end + 1, scale)) {
        return Reading{end + 1 + scale.size(),
                       read(amount) + " " + std::string(scale) + " " + std::string(c.many)};
      }
    }
    const bool cents = amount.frac_digits.size() == 2 && !c.cent_one.empty();
    if (!amount.is_integer() && !cents)
      return Reading{end, read(amount) + " " + std::string(c.many)};
    std::string words;
    const bool no_units = cents && amount.int_digits.find_first_not_of('0') == std::string::npos;
    if (!no_units) {
      words = en_cardinal(amount.int_digits) + " " +
              std::string(amount.int_digits == "1" ? c.one : c.many);
    }
    if (cents && amount.frac_digits != "00") {
      const std::string n = std::to_string(*small_value(amount.frac_digits));
      words += (words.empty() ? "" : " and ") + en_cardinal(n) + " " +
               std::string(n == "1" ? c.cent_one : c.cent_many);
    }
    return Reading{end, words};
  }
  return std::nullopt;
}

std::optional<Reading> english_rule(std::string_view s, size_t at) {
  const char c = s[at];
  if (is_digit(c)) {
    for (auto rule : {date, phone, clock_time, ordinal, decade, fraction})
      if (auto r = rule(s, at)) return r;
    return quantity(s, at);
  }
  if (c == '(') return phone(s, at);
  // -5 → "minus five" (a sign, not a hyphen inside a word or a range)
  if (c == '-' && is_digit(byte_at(s, at + 1)) && (at == 0 || !is_alnum(s[at - 1]))) {
    Reading r = quantity(s, at + 1);
    r.words = "minus " + r.words;
    return r;
  }
  return money(s, at);
}

}  // namespace

std::string verbalize_english(std::string_view text) {
  return rewrite_written_forms(text, english_rule, /*space_words=*/true);
}

}  // namespace cosy::text
