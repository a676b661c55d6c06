// multipart/form-data bodies (POST /v1/audio/voices), parsed by GMime, the MIME library.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cosy::server {

struct FormPart {
  std::string name;      // Content-Disposition's name
  std::string filename;  // its filename, if any
  std::string data;      // the part's bytes, transfer encoding undone
};

// The parts of a body sent with `content_type` (which must be multipart/form-data with a
// boundary). A malformed body throws an ApiError (400).
std::vector<FormPart> parse_form_data(std::string_view content_type, std::string_view body);

}  // namespace cosy::server
