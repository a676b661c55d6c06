#include "text/text_frontend.h"

#include <unicode/uchar.h>

#include "text/char_filter.h"
#include "text/utf8.h"
#include "text/written_forms.h"

namespace cosy::text {
namespace {

// One pass, so megabytes of text with many matches stay linear.
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  size_t at = s.find(from);
  if (at == std::string::npos) return s;
  std::string out;
  out.reserve(s.size());
  size_t done = 0;
  for (; at != std::string::npos; at = s.find(from, done)) {
    out.append(s, done, at - done);
    out.append(to);
    done = at + from.size();
  }
  out.append(s, done, std::string::npos);
  return out;
}

// Python's str.strip(): Unicode whitespace at both ends.
std::string strip(std::string_view text) {
  size_t begin = text.size(), end = 0;
  for_each_code_point(text, [&](UChar32 c, size_t b, size_t e) {
    if (u_isUWhiteSpace(c) != 0) return;
    begin = std::min(begin, b);
    end = e;
  });
  return begin >= end ? std::string() : std::string(text.substr(begin, end - begin));
}

// replace_blank: a space survives only between two ASCII non-space characters.
std::string replace_blank(std::string_view text) {
  std::vector<std::pair<UChar32, std::string_view>> chars;
  for_each_code_point(
      text, [&](UChar32 c, size_t b, size_t e) { chars.emplace_back(c, text.substr(b, e - b)); });
  auto ascii_word = [](UChar32 c) { return c < 0x80 && c != ' '; };
  std::string out;
  for (size_t i = 0; i < chars.size(); ++i) {
    if (chars[i].first == ' ') {
      // The official code indexes text[i - 1] and text[i + 1]; after strip() a space is
      // never first or last, so both neighbours exist.
      if (i == 0 || i + 1 == chars.size()) continue;
      if (!ascii_word(chars[i - 1].first) || !ascii_word(chars[i + 1].first)) continue;
    }
    out += chars[i].second;
  }
  return out;
}

// re.sub(r'[，,、]+$', '。', text)
std::string trailing_commas_to_full_stop(std::string text) {
  size_t end = text.size();
  for (;;) {
    if (end >= 1 && text[end - 1] == ',') {
      end -= 1;
    } else if (end >= 3 &&
               (text.compare(end - 3, 3, "，") == 0 || text.compare(end - 3, 3, "、") == 0)) {
      end -= 3;
    } else {
      break;
    }
  }
  if (end == text.size()) return text;
  text.resize(end);
  return text + "。";
}

}  // namespace

namespace {
bool only_punctuation_or_symbols(std::string_view text, bool space_too) {
  bool only = true;
  for_each_code_point(text, [&](UChar32 c, size_t, size_t) {
    if (space_too && u_isUWhiteSpace(c)) return;
    switch (u_charType(c)) {
      case U_DASH_PUNCTUATION:
      case U_START_PUNCTUATION:
      case U_END_PUNCTUATION:
      case U_CONNECTOR_PUNCTUATION:
      case U_OTHER_PUNCTUATION:
      case U_INITIAL_PUNCTUATION:
      case U_FINAL_PUNCTUATION:
      case U_MATH_SYMBOL:
      case U_CURRENCY_SYMBOL:
      case U_MODIFIER_SYMBOL:
      case U_OTHER_SYMBOL:
        break;
      default:
        only = false;
    }
  });
  return only;
}
}  // namespace

bool is_only_punctuation(std::string_view text) { return only_punctuation_or_symbols(text, false); }

bool has_nothing_to_speak(std::string_view text) { return only_punctuation_or_symbols(text, true); }

TextFrontend TextFrontend::load(const std::filesystem::path& dir, TextFlavor flavor) {
  return TextFrontend(BpeTokenizer::load(dir), flavor);
}

TextFrontend::TextFrontend(BpeTokenizer tokenizer, TextFlavor flavor)
    : tokenizer_(std::move(tokenizer)), flavor_(flavor) {
  tokenizer_.add_special_tokens(flavor == TextFlavor::CosyVoice3 ? cosyvoice3_special_tokens()
                                                                 : cosyvoice2_special_tokens());
}

bool TextFrontend::kept_as_written(std::string_view text) const {
  return flavor_ == TextFlavor::CosyVoice3 && text.find("<|") != std::string_view::npos &&
         text.find("|>") != std::string_view::npos;
}

std::string TextFrontend::normalize(std::string_view input) const {
  const bool chinese = contains_chinese(input);
  // Stripped after cleaning: a removed emoji may leave a space at an end.
  std::string text = strip(clean_characters(input, chinese));
  if (!chinese) return verbalize_english(text);
  text = verbalize_chinese(text);
  text = replace_all(std::move(text), "\n", "");
  text = replace_blank(text);
  text = replace_all(std::move(text), "²", "平方");
  text = replace_all(std::move(text), "³", "立方");
  text = replace_all(std::move(text), ".", "。");
  text = replace_all(std::move(text), " - ", "，");
  for (const char* drop : {"（", "）", "【", "】", "`"})
    text = replace_all(std::move(text), drop, "");
  text = replace_all(std::move(text), "——", " ");
  return trailing_commas_to_full_stop(std::move(text));
}

std::vector<std::string> TextFrontend::split(std::string_view normalized) const {
  const Language language = contains_chinese(normalized) ? Language::Chinese : Language::English;
  auto segments = split_segments(normalized, language, segment_, [this](std::string_view s) {
    return tokenizer_.encode(s).size();
  });
  std::erase_if(segments, [](const std::string& s) { return has_nothing_to_speak(s); });
  return segments;
}

std::vector<TextSegment> TextFrontend::prepare(std::string_view text) const {
  std::vector<TextSegment> out;
  if (kept_as_written(text)) {
    if (!has_nothing_to_speak(text)) out.push_back({std::string(text), tokenizer_.encode(text)});
    return out;
  }
  for (std::string& s : split(normalize(text))) {
    TextSegment seg;
    seg.ids = tokenizer_.encode(s);
    seg.text = std::move(s);
    out.push_back(std::move(seg));
  }
  return out;
}

}  // namespace cosy::text
