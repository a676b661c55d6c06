// Text split the way a chat LLM writes it, for feeding at its pace: with a tokenizer, one
// piece per token (tokens that end inside a UTF-8 character join the next); without one,
// one piece per word with its trailing space, and one per CJK character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cosy::text {
class BpeTokenizer;
}

namespace cosy::loadtest {

std::vector<std::string> text_pieces(std::string_view text, const text::BpeTokenizer* tokenizer);

}  // namespace cosy::loadtest
