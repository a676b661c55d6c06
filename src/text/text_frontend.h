// What the official CosyVoice2 frontend does to user text before the LLM sees it
// (CosyVoiceFrontEnd.text_normalize with split=True, then _extract_text_token):
//   strip → normalise → split into segments → drop segments that are only punctuation →
//   tokenize each segment with the Qwen2 BPE plus CosyVoice2's special tokens.
// Immutable after loading: one instance serves every stream.
//
// Normalisation removes what the model cannot speak, reads written forms (numbers, dates,
// money, units...) as words where the official code runs wetext's grammars, then applies
// the official punctuation and spacing rules. docs/text-normalization.md lists every rule.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "text/bpe_tokenizer.h"
#include "text/segmenter.h"
#include "text/special_tokens.h"

namespace cosy::text {

// Which family's frontend: CosyVoice3 adds more special tokens (text/special_tokens.h)
// and leaves text holding a <|...|> tag as written (text_normalize returns it untouched and
// unsplit: an instruction or a system prompt is not prose).
enum class TextFlavor { CosyVoice2, CosyVoice3 };

struct TextSegment {
  std::string text;  // normalised
  std::vector<int32_t> ids;
};

class TextFrontend {
 public:
  // The tokenizer of `dir` (a model folder's CosyVoice-BlankEN/) with the flavor's
  // specials added. Errors name the file.
  static TextFrontend load(const std::filesystem::path& dir,
                           TextFlavor flavor = TextFlavor::CosyVoice2);
  explicit TextFrontend(BpeTokenizer tokenizer, TextFlavor flavor = TextFlavor::CosyVoice2);

  // The rules for the text's language (Chinese when it holds any CJK ideograph):
  //  - both: clean_characters, strip surrounding whitespace, then the written forms are read
  //    as words (verbalize_chinese / verbalize_english);
  //  - Chinese: drop newlines; keep a space only between two ASCII non-space characters
  //    ("你好 world" → "你好world", "hello world" stays); "²" → "平方", "³" → "立方";
  //    "." → "。"; " - " → "，"; drop （）【】 and backticks; "——" → " "; trailing
  //    "，", "," or "、" → "。".
  std::string normalize(std::string_view text) const;
  // Normalised text → segments of 60–80 tokens on sentence punctuation (split_segments),
  // without the segments that have nothing to speak (has_nothing_to_speak).
  std::vector<std::string> split(std::string_view normalized) const;
  // normalize + split + encode: what the LLM runs, one segment after another. CosyVoice3:
  // text holding a <|...|> tag is one segment, as written (kept_as_written).
  std::vector<TextSegment> prepare(std::string_view text) const;
  bool kept_as_written(std::string_view text) const;
  TextFlavor flavor() const { return flavor_; }
  // Text ids of a piece of text as it is (the bistream path tokenizes each arriving piece).
  std::vector<int32_t> encode(std::string_view text) const { return tokenizer_.encode(text); }

  const BpeTokenizer& tokenizer() const { return tokenizer_; }

 private:
  BpeTokenizer tokenizer_;
  TextFlavor flavor_;
  SegmenterOptions segment_;
};

// True when every code point is Unicode punctuation (P*) or a symbol (S*); "" counts.
bool is_only_punctuation(std::string_view text);
// The same, white space allowed too: a segment with nothing a voice could say. The official
// splitter drops only segments with no space ("!!!"); one like "?? !" reaches its LM, which
// then speaks noise. We drop both.
bool has_nothing_to_speak(std::string_view text);

}  // namespace cosy::text
