// The playground's files (src/server/playground/), compiled into the binary by
// cmake/embed_files.cmake, served at / and /playground/NAME. Public: they hold no secret
// and no data, and a page must load before a user can type an API key into it.
#pragma once

#include <string_view>
#include <vector>

namespace cosy::server {

struct StaticAsset {
  std::string_view name;          // under /playground/
  std::string_view content_type;  // with charset for text
  std::string_view etag;          // quoted SHA-1 of the bytes
  std::string_view bytes;
};

const std::vector<StaticAsset>& embedded_assets();

// The asset a GET of `path` (no query string) names: "/" is index.html. Null for any other
// path, including one that climbs out ("/playground/../x") or names no asset.
const StaticAsset* find_static_asset(std::string_view path);

}  // namespace cosy::server
