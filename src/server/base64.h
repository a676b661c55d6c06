// Base64 (RFC 4648) through OpenSSL's encoder and decoder: SSE audio out, data: URLs in.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cosy::server {

std::string base64_encode(std::string_view bytes);
// The bytes of standard base64 (padding required, no line breaks); nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view text);

// A `data:[<mime>][;base64],<payload>` URL's decoded payload; nullopt when `url` is not a
// base64 data URL or its payload is malformed.
std::optional<std::string> decode_data_url(std::string_view url);

}  // namespace cosy::server
