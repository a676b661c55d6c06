// Text normalisation proper: written forms (numbers, dates, times, money, percentages,
// phone numbers, units) rewritten as the words a speaker says, in Chinese or in English.
// The official frontend runs wetext's grammars for this; these are our own rules, each one
// listed with an example in docs/text-normalization.md. Linear in the text's length; text
// without digits comes back unchanged.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cosy::text {

// "2024-03-05 10:30，气温-5℃，涨了50%" →
// "二零二四年三月五日十点三十分，气温负五摄氏度，涨了百分之五十"
std::string verbalize_chinese(std::string_view text);
// "On 2024-03-05 at 10:30 am it cost $5.50" →
//   "On March fifth, twenty twenty-four at ten thirty a m it cost five dollars and fifty cents"
std::string verbalize_english(std::string_view text);

// What one rule read: the words, and where in the text the written form ended.
struct Reading {
  size_t end = 0;
  std::string words;
};
// A rule tries to read a written form starting at byte `at`.
using ReadingRule = std::optional<Reading> (*)(std::string_view text, size_t at);

// Runs `rule` at every position and splices in what it reads. With `space_words`, a reading
// is kept apart from letters and digits on either side by a space (English).
std::string rewrite_written_forms(std::string_view text, ReadingRule rule, bool space_words);

}  // namespace cosy::text
