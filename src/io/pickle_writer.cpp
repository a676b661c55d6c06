#include "io/pickle_writer.h"

#include <bit>
#include <cstring>

#include "core/error.h"

namespace cosy::pickle {
namespace {

std::string storage_class(DType t) {
  switch (t) {
    case DType::F32:
      return "FloatStorage";
    case DType::F64:
      return "DoubleStorage";
    case DType::F16:
      return "HalfStorage";
    case DType::BF16:
      return "BFloat16Storage";
    case DType::I64:
      return "LongStorage";
    case DType::I32:
      return "IntStorage";
    case DType::I16:
      return "ShortStorage";
    case DType::I8:
      return "CharStorage";
    case DType::U8:
      return "ByteStorage";
    case DType::Bool:
      return "BoolStorage";
  }
  return "FloatStorage";
}

}  // namespace

Writer::Writer() {
  op(0x80);
  op(2);
}

void Writer::none() { op('N'); }
void Writer::boolean(bool v) { op(v ? 0x88 : 0x89); }

void Writer::integer(int64_t v) {
  if (v >= 0 && v < 256) {
    op('K');
    raw<uint8_t>(static_cast<uint8_t>(v));
  } else if (v >= 0 && v < 65536) {
    op('M');
    raw<uint16_t>(static_cast<uint16_t>(v));
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op('J');
    raw<int32_t>(static_cast<int32_t>(v));
  } else {
    op(0x8a);
    op(8);
    raw<int64_t>(v);
  }
}

void Writer::real(double v) {
  op('G');
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void Writer::string(const std::string& v) {
  op('X');
  raw<uint32_t>(static_cast<uint32_t>(v.size()));
  out_ += v;
}

void Writer::global(const std::string& module, const std::string& name) {
  op('c');
  out_ += module + "\n" + name + "\n";
}

void Writer::int_tuple(const Shape& s) {
  op('(');
  for (int64_t d : s) integer(d);
  op('t');
}

void Writer::tensor(const TensorRecord& t) {
  global("torch._utils", "_rebuild_tensor_v2");
  op('(');
  op('(');
  string("storage");
  global("torch", storage_class(t.dtype));
  string(t.storage_key);
  string("cpu");
  integer(t.storage_numel);
  op('t');
  op('Q');
  integer(t.offset);
  int_tuple(t.shape);
  int_tuple(t.stride);
  boolean(false);
  global("collections", "OrderedDict");
  op(')');
  op('R');
  op('t');
  op('R');
}

void Writer::begin_dict(bool ordered) {
  if (ordered) {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  } else {
    op('}');
  }
  op('(');
  ++open_dicts_;
}

void Writer::end_dict() {
  if (open_dicts_ == 0) fail("pickle writer: end_dict without begin_dict");
  --open_dicts_;
  op('u');
}

std::string Writer::finish() {
  if (open_dicts_ != 0) fail("pickle writer: unclosed dict");
  op('.');
  return std::move(out_);
}

}  // namespace cosy::pickle
