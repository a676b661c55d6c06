#include "server/static_assets.h"

#include <gtest/gtest.h>

#include <string>

namespace cosy::server {
namespace {

TEST(StaticAssets, ThePageAndItsFilesAreFoundAndNothingElse) {
  const StaticAsset* index = find_static_asset("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->name, "index.html");
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->bytes.find("<html"), std::string_view::npos);
  EXPECT_EQ(find_static_asset("/playground/"), index);
  // Every file is embedded with its type and a quoted SHA-1 ETag, and is loaded by another
  // (nothing embedded is dead weight, nothing loaded is missing: see the browser test).
  for (const StaticAsset& a : embedded_assets()) {
    EXPECT_EQ(find_static_asset("/playground/" + std::string(a.name)), &a);
    EXPECT_EQ(a.etag.size(), 42u) << a.name;
    EXPECT_FALSE(a.bytes.empty()) << a.name;
    if (a.name.ends_with(".js")) {
      EXPECT_EQ(a.content_type, "text/javascript; charset=utf-8");
    }
    if (a.name == "index.html") continue;
    bool loaded = false;
    for (const StaticAsset& b : embedded_assets()) {
      loaded = loaded || (&b != &a && b.bytes.find(a.name) != std::string_view::npos);
    }
    EXPECT_TRUE(loaded) << a.name << " is embedded but no page or module loads it";
  }
  for (const char* path :
       {"/playground/../CMakeLists.txt", "/playground/index.html/", "/playground/x.js",
        "/index.html", "/playground//index.html", "", "/v1/models"}) {
    EXPECT_EQ(find_static_asset(path), nullptr) << path;
  }
}

}  // namespace
}  // namespace cosy::server
