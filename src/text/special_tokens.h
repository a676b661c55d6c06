// The whole-string tokens each family's tokenizer adds on top of the Qwen2 vocabulary, in
// the official order (cosyvoice/tokenizer/tokenizer.py): their ids follow the vocabulary's
// in this order, so the order is part of the model.
#pragma once

#include <string>
#include <vector>

namespace cosy::text {

// CosyVoice2Tokenizer's: the chat markers, <|endofprompt|> and the paralinguistic tags.
const std::vector<std::string>& cosyvoice2_special_tokens();
// CosyVoice3Tokenizer's: CosyVoice2's, then <|endofsystem|>, the CMU phones ([AA]..[ZH],
// with stress digits) and the pinyin initials and finals with tones ([b], [iǎng]...).
const std::vector<std::string>& cosyvoice3_special_tokens();

}  // namespace cosy::text
