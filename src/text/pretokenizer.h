// Qwen2's pre-tokenizer: the split the regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// makes, implemented as a direct scanner over code points with ICU's Unicode properties
// (\p{L}, \p{N}, White_Space), so it runs at memory speed without a regex engine.
#pragma once

#include <string_view>
#include <vector>

namespace cosy::text {

// Splits valid UTF-8 `text` into the pieces the regex matches, in order; concatenated they
// give back `text`. Fails on invalid UTF-8.
std::vector<std::string_view> pretokenize(std::string_view text);

}  // namespace cosy::text
