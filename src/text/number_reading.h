// How numbers are read aloud, in Chinese and in English: the vocabulary the written-form
// verbalisers (verbalize_chinese, verbalize_english) are built from. Every function takes
// ASCII digit strings, so numbers of any length are safe: past what a reading covers they
// fall back to reading the digits one by one.
#pragma once

#include <string>
#include <string_view>

namespace cosy::text {

// Chinese.
// "2024" → "二零二四"; with `phone`, 1 reads "幺" as in spoken phone numbers.
std::string zh_digits(std::string_view digits, bool phone = false);
// "123" → "一百二十三", "10" → "十", "1001" → "一千零一", "2000" → "两千",
// "120000000" → "一亿两千万". Leading zeros or more than 16 digits read digit by digit.
std::string zh_integer(std::string_view digits);
// "3", "14" → "三点一四".
std::string zh_decimal(std::string_view int_digits, std::string_view frac_digits);

// English, from ICU's spell-out rules (CLDR data).
// "123" → "one hundred twenty-three". Leading zeros or more than 15 digits read digit by digit.
std::string en_cardinal(std::string_view digits);
// "21" → "twenty-first".
std::string en_ordinal(std::string_view digits);
// "1998" → "nineteen ninety-eight", "2005" → "two thousand five", "2024" → "twenty twenty-four".
std::string en_year(std::string_view digits);
// "555" → "five five five".
std::string en_digits(std::string_view digits);
// "3", "14" → "three point one four".
std::string en_decimal(std::string_view int_digits, std::string_view frac_digits);
// "eighty" → "eighties", "third" → "thirds", "six" → "sixes".
std::string en_plural(std::string word);

}  // namespace cosy::text
