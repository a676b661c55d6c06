#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/mapped_file.h"

namespace cosy {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit

DType safetensors_dtype(const std::string& s, const std::string& label, const std::string& name) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F64", DType::F64},  {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I64", DType::I64}, {"I32", DType::I32},  {"I16", DType::I16}, {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (const auto& [n, t] : table) {
    if (s == n) return t;
  }
  fail(label, ": tensor '", name, "' has unsupported dtype ", s);
}

}  // namespace

StateDict parse_safetensors(const Blob& blob, const std::string& label) {
  ByteReader r(blob.bytes, label);
  const uint64_t header_len = r.u64();
  if (header_len > kMaxHeader || header_len > r.remaining())
    fail(label, ": header length ", header_len, " is invalid");
  const std::string_view header_text = r.take_string(header_len);
  const size_t data_start = r.pos();
  const size_t data_size = r.remaining();
  nlohmann::json header = nlohmann::json::parse(header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) fail(label, ": header is not a JSON object");
  StateDict sd;
  sd.label = label;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets") || !info["dtype"].is_string() || !info["shape"].is_array() ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      fail(label, ": malformed header entry for '", name, "'");
    }
    const DType dtype = safetensors_dtype(info["dtype"].get<std::string>(), label, name);
    Shape shape;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) fail(label, ": tensor '", name, "' has a bad dimension");
      shape.push_back(d.get<int64_t>());
    }
    const auto& off = info["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(label, ": bad data_offsets for '", name, "'");
    const uint64_t begin = off[0].get<uint64_t>();
    const uint64_t end = off[1].get<uint64_t>();
    const int64_t numel =
        with_context(label + ": '" + name + "'", [&] { return shape_numel(shape); });
    if (begin > end || end > data_size)
      fail(label, ": tensor '", name, "' lies outside the data section");
    if (end - begin != static_cast<uint64_t>(numel) * dtype_size(dtype)) {
      fail(label, ": tensor '", name, "' spans ", end - begin, " bytes but shape ",
           shape_str(shape), " needs ", static_cast<uint64_t>(numel) * dtype_size(dtype));
    }
    Blob data = blob.sub(data_start + begin, end - begin);
    if (reinterpret_cast<uintptr_t>(data.bytes.data()) % dtype_size(dtype) != 0)
      data = copy_blob(data.bytes);
    sd.add(name, Tensor(dtype, shape, contiguous_strides(shape),
                        const_cast<std::byte*>(data.bytes.data()), data.owner, false));
  }
  return sd;
}

StateDict load_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(map_file(path), path.string());
}

}  // namespace cosy
