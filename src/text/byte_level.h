// GPT-2's byte-level alphabet: each byte maps to a printable code point, so byte strings
// become vocabulary strings (printable ASCII and Latin-1 map to themselves).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cosy::text {

// The UTF-8 of the code point byte b maps to.
const std::array<std::string, 256>& byte_to_unicode();
// Inverse: code point → byte, or -1 when the code point is not in the alphabet.
int byte_of_code_point(uint32_t cp);

}  // namespace cosy::text
