#include "io/npy.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/mapped_file.h"

namespace cosy {
namespace {

struct NpyDescr {
  std::string_view code;
  DType dtype;
};
constexpr NpyDescr kDescrs[] = {
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16},
    {"<i8", DType::I64}, {"<i4", DType::I32}, {"<i2", DType::I16},
    {"|i1", DType::I8},  {"|u1", DType::U8},  {"|b1", DType::Bool},
};

// A tiny parser for the Python-literal header dict: {'descr': '<f4', 'fortran_order': False,
// 'shape': (1, 2), }
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& label) : s_(s), label_(label) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      ws();
      if (key == "descr") {
        descr = quoted();
        seen_descr = true;
      } else if (key == "fortran_order") {
        fortran = word() == "True";
        seen_order = true;
      } else if (key == "shape") {
        shape = tuple();
        seen_shape = true;
      } else {
        fail(label_, ": unknown npy header key '", key, "'");
      }
      ws();
      if (peek() == ',') ++p_;
    }
    if (!seen_descr || !seen_order || !seen_shape)
      fail(label_, ": npy header lacks descr, fortran_order or shape");
  }

 private:
  char peek() const {
    if (p_ >= s_.size()) fail(label_, ": npy header ends early");
    return s_[p_];
  }
  void ws() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
  }
  void expect(char c) {
    ws();
    if (peek() != c) fail(label_, ": malformed npy header (expected '", c, "' at ", p_, ")");
    ++p_;
  }
  std::string quoted() {
    ws();
    const char q = peek();
    if (q != '\'' && q != '"')
      fail(label_, ": malformed npy header (expected a string at ", p_, ")");
    const size_t end = s_.find(q, p_ + 1);
    if (end == std::string_view::npos) fail(label_, ": unterminated string in npy header");
    std::string out(s_.substr(p_ + 1, end - p_ - 1));
    p_ = end + 1;
    return out;
  }
  std::string word() {
    const size_t start = p_;
    while (p_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[p_]))) ++p_;
    std::string w(s_.substr(start, p_ - start));
    if (w != "True" && w != "False") fail(label_, ": fortran_order must be True or False");
    return w;
  }
  Shape tuple() {
    expect('(');
    Shape out;
    while (true) {
      ws();
      if (peek() == ')') break;
      int64_t v = 0;
      size_t digits = 0;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) {
        if (++digits > 15) fail(label_, ": npy dimension too large");
        v = v * 10 + (s_[p_++] - '0');
      }
      if (digits == 0) fail(label_, ": malformed shape in npy header");
      out.push_back(v);
      ws();
      if (peek() == ',') ++p_;
    }
    ++p_;
    if (out.size() > 16) fail(label_, ": npy rank ", out.size(), " is too large");
    return out;
  }

  std::string_view s_;
  const std::string& label_;
  size_t p_ = 0;
};

}  // namespace

Tensor parse_npy(const Blob& blob, const std::string& label) {
  ByteReader r(blob.bytes, label);
  if (blob.bytes.size() < 10 || r.take_string(6) != "\x93NUMPY")
    fail(label, ": not an .npy file (bad magic)");
  const uint8_t major = r.u8();
  r.u8();  // minor
  size_t header_len = 0;
  if (major == 1) {
    header_len = r.u16();
  } else if (major == 2 || major == 3) {
    header_len = r.u32();
  } else {
    fail(label, ": unsupported .npy version ", int(major));
  }
  const std::string_view header = r.take_string(header_len);
  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(header, label).parse(descr, fortran, shape);
  const NpyDescr* d = nullptr;
  for (const auto& x : kDescrs) {
    if (x.code == descr) d = &x;
  }
  if (d == nullptr) fail(label, ": unsupported npy dtype '", descr, "'");
  const int64_t numel = with_context(label, [&] { return shape_numel(shape); });
  const size_t es = dtype_size(d->dtype);
  if (static_cast<uint64_t>(numel) > r.remaining() / es) {
    fail(label, ": data holds ", r.remaining(), " bytes, shape ", shape_str(shape), " of ", descr,
         " needs ", static_cast<uint64_t>(numel) * es, " (truncated)");
  }
  Shape strides;
  with_context(label, [&] {
    if (!fortran) {
      strides = contiguous_strides(shape);
      return;
    }
    // Column-major: the strides of the reversed shape, reversed.
    Shape reversed(shape.rbegin(), shape.rend());
    strides = contiguous_strides(reversed);
    std::reverse(strides.begin(), strides.end());
  });
  Blob data = blob.sub(r.pos(), static_cast<size_t>(numel) * es);
  if (reinterpret_cast<uintptr_t>(data.bytes.data()) % es != 0) data = copy_blob(data.bytes);
  return Tensor(d->dtype, shape, strides, const_cast<std::byte*>(data.bytes.data()), data.owner,
                false);
}

Tensor load_npy(const std::filesystem::path& path) {
  return parse_npy(map_file(path), path.string());
}

std::string npy_bytes(const Tensor& t) {
  const NpyDescr* d = nullptr;
  for (const auto& x : kDescrs) {
    if (x.dtype == t.dtype()) d = &x;
  }
  if (d == nullptr) fail("npy: cannot write dtype ", dtype_name(t.dtype()));
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dim(i));
  shape += t.rank() == 1 ? ",)" : ")";
  std::string header =
      "{'descr': '" + std::string(d->code) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const Tensor c = t.contiguous();
  out.append(reinterpret_cast<const char*>(c.raw()), c.nbytes());
  return out;
}

void save_npy(const std::filesystem::path& path, const Tensor& t) {
  const std::string bytes = npy_bytes(t);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail(path.string(), ": cannot write");
}

}  // namespace cosy
