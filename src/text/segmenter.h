// Splits long text into the segments the LLM synthesises one after another, the way the
// official CosyVoice frontend does (split_paragraph): cut after sentence punctuation, then
// pack sentences into segments of at most max_len, closing one only once it exceeds
// min_len, and fold a short tail into the segment before it. Chinese lengths count
// characters; English lengths count tokens.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cosy::text {

enum class Language { Chinese, English };

struct SegmenterOptions {
  size_t max_len = 80;    // token_max_n
  size_t min_len = 60;    // token_min_n
  size_t merge_len = 20;  // a tail shorter than this joins the previous segment
  bool comma_split = false;
};

// True when the text holds any CJK ideograph (the official frontend's is_only/contains
// Chinese test decides which normaliser and splitter run).
bool contains_chinese(std::string_view text);

// Splits valid UTF-8 `text`. `count_tokens` measures English lengths.
std::vector<std::string> split_segments(
    std::string_view text, Language language, const SegmenterOptions& options,
    const std::function<size_t(std::string_view)>& count_tokens);

}  // namespace cosy::text
