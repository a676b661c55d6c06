#include "server/static_assets.h"

namespace cosy::server {

const StaticAsset* find_static_asset(std::string_view path) {
  constexpr std::string_view kPrefix = "/playground/";
  std::string_view name;
  if (path == "/" || path == "/playground" || path == "/playground/") {
    name = "index.html";
  } else if (path.starts_with(kPrefix)) {
    name = path.substr(kPrefix.size());
  } else {
    return nullptr;
  }
  // Names are looked up, never joined to a file path, so nothing outside the list is
  // reachable; exact matching is the whole check.
  for (const StaticAsset& a : embedded_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace cosy::server
