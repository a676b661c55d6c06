#include "text/segmenter.h"

#include <algorithm>

#include "core/error.h"
#include "text/utf8.h"

namespace cosy::text {
namespace {

struct Char {
  UChar32 c;
  size_t begin, end;  // byte range
};

std::vector<Char> chars_of(std::string_view text) {
  std::vector<Char> out;
  for_each_code_point(text, [&](UChar32 c, size_t begin, size_t end) {
    out.push_back({c, begin, end});
  });
  return out;
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

bool is_sentence_end(UChar32 c, Language language, bool comma_split) {
  static constexpr UChar32 kChinese[] = {U'。', U'？', U'！', U'；', U'：',
                                         U'、', U'.',  U'?',  U'!',  U';'};
  static constexpr UChar32 kEnglish[] = {U'.', U'?', U'!', U';', U':'};
  if (comma_split && (c == U'，' || c == U',')) return true;
  if (language == Language::Chinese)
    return std::find(std::begin(kChinese), std::end(kChinese), c) != std::end(kChinese);
  return std::find(std::begin(kEnglish), std::end(kEnglish), c) != std::end(kEnglish);
}

}  // namespace

bool contains_chinese(std::string_view text) {
  for (const Char& ch : chars_of(text)) {
    if (ch.c >= 0x4e00 && ch.c <= 0x9fff) return true;
  }
  return false;
}

std::vector<std::string> split_segments(
    std::string_view input, Language language, const SegmenterOptions& options,
    const std::function<size_t(std::string_view)>& count_tokens) {
  if (input.empty()) return {};
  std::string text(input);
  std::vector<Char> chars = chars_of(text);
  // Text must end in sentence punctuation; the official code appends one.
  if (!is_sentence_end(chars.back().c, language, options.comma_split)) {
    text += language == Language::Chinese ? "。" : ".";
    chars = chars_of(text);
  }
  // 1. Sentences: cut after each sentence mark; a closing quote right after stays with it.
  std::vector<std::string> sentences;
  size_t start = 0;  // index into chars
  for (size_t i = 0; i < chars.size(); ++i) {
    if (!is_sentence_end(chars[i].c, language, options.comma_split)) continue;
    size_t last = i;
    if (i + 1 < chars.size() && (chars[i + 1].c == U'"' || chars[i + 1].c == U'”')) last = i + 1;
    if (i > start) {
      sentences.push_back(text.substr(chars[start].begin, chars[last].end - chars[start].begin));
    } else if (last > i && !sentences.empty()) {
      sentences.back() += text.substr(chars[last].begin, chars[last].end - chars[last].begin);
    }
    start = last + 1;
    i = last;
  }
  // 2. Pack sentences into segments.
  auto length = [&](std::string_view s) {
    return language == Language::Chinese ? code_points(s) : count_tokens(s);
  };
  std::vector<std::string> segments;
  std::string current;
  for (const std::string& s : sentences) {
    if (length(current + s) > options.max_len && length(current) > options.min_len) {
      segments.push_back(std::move(current));
      current.clear();
    }
    current += s;
  }
  if (!current.empty()) {
    if (length(current) < options.merge_len && !segments.empty()) {
      segments.back() += current;
    } else {
      segments.push_back(std::move(current));
    }
  }
  return segments;
}

}  // namespace cosy::text
