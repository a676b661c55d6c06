#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cosy {
namespace {

std::string file_with(const nlohmann::json& header, const std::string& data) {
  const std::string h = header.dump();
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + data;
}

Blob blob(const std::string& s) {
  return copy_blob({reinterpret_cast<const std::byte*>(s.data()), s.size()});
}

std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors(blob(bytes), "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ParsesTensorsAndMetadata) {
  std::string data(24, '\0');
  const float vals[4] = {1, 2, 3, 4};
  std::memcpy(data.data(), vals, 16);
  const int32_t ids[2] = {7, -7};
  std::memcpy(data.data() + 16, ids, 8);
  nlohmann::json h = {{"__metadata__", {{"format", "pt"}}},
                      {"w", {{"dtype", "F32"}, {"shape", {2, 2}}, {"data_offsets", {0, 16}}}},
                      {"ids", {{"dtype", "I32"}, {"shape", {2}}, {"data_offsets", {16, 24}}}}};
  StateDict sd = parse_safetensors(blob(file_with(h, data)), "m.safetensors");
  EXPECT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd.at("w").to_float_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(sd.at("ids").to_int_vector(), (std::vector<int64_t>{7, -7}));
}

TEST(Safetensors, RejectsInconsistentHeaders) {
  const std::string data(16, '\0');
  auto entry = [](const char* dt, nlohmann::json shape, nlohmann::json off) {
    return nlohmann::json{{"w", {{"dtype", dt}, {"shape", shape}, {"data_offsets", off}}}};
  };
  EXPECT_NE(error_of(file_with(entry("F32", {2, 2}, {0, 32}), data)).find("outside the data"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(entry("F32", {3}, {0, 16}), data)).find("needs 12"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(entry("C64", {2}, {0, 16}), data)).find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(entry("F32", {-1}, {0, 16}), data)).find("bad dimension"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(nlohmann::json::array(), data)).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of("short").find("truncated"), std::string::npos);
  std::string huge(8, '\xff');
  EXPECT_NE(error_of(huge).find("header length"), std::string::npos);
}

}  // namespace
}  // namespace cosy
