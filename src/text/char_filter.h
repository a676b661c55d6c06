// Character-level clean-up before the written forms are read: characters the model cannot
// speak are removed, and full-width forms become the ASCII the rest of the frontend and the
// tokenizer expect.
#pragma once

#include <string>
#include <string_view>

namespace cosy::text {

// On valid UTF-8 (fails on invalid):
//  - removes control characters other than newline (tab becomes a space, CR LF or CR a
//    newline), format characters (zero-width spaces and joiners, BOM, bidi marks), private
//    use and unassigned code points, and emoji ("好的👍🏻" → "好的");
//  - turns full-width digits, Latin letters and ％ into ASCII ("１２３ＡＢ％" → "123AB%") and
//    the ideographic space into a space. In text without Chinese, full-width punctuation
//    becomes ASCII too ("Ｈｉ！" → "Hi!"); Chinese text keeps its full-width punctuation,
//    which the model was trained on and the splitter cuts at.
std::string clean_characters(std::string_view text, bool chinese);

}  // namespace cosy::text
