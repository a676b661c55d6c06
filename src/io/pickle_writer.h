// Writes protocol-2 pickles in the form torch.save produces for state dicts and nested
// dicts of tensors, so torch.load and our own reader both accept them.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace cosy::pickle {

struct TensorRecord {
  DType dtype = DType::F32;
  std::string storage_key;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  Shape shape;
  Shape stride;
};

class Writer {
 public:
  Writer();
  void none();
  void boolean(bool v);
  void integer(int64_t v);
  void real(double v);
  void string(const std::string& v);
  void tensor(const TensorRecord& t);
  // Between begin_dict and end_dict, write key, value, key, value, ...
  void begin_dict(bool ordered);
  void end_dict();
  // Appends STOP and returns the pickle bytes.
  std::string finish();

 private:
  void op(uint8_t code) { out_.push_back(static_cast<char>(code)); }
  void global(const std::string& module, const std::string& name);
  void int_tuple(const Shape& s);
  template <typename T>
  void raw(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  std::string out_;
  int open_dicts_ = 0;
};

}  // namespace cosy::pickle
