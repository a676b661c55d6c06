// A restricted reader for the pickles torch.save writes (protocol 2). It builds a tree of
// plain values and tensor records; it never calls or imports anything. The only globals
// accepted are the tensor rebuild functions, OrderedDict and the typed storage classes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace cosy::pickle {

enum class Kind { None, Bool, Int, Float, String, List, Tuple, Dict, Global, Storage, Tensor };

struct StorageRef {
  DType dtype = DType::F32;
  std::string key;       // the archive's data/<key> entry
  std::string location;  // "cpu", "cuda:0", ... (ignored: we load to host)
  int64_t numel = 0;
};

struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape stride;
  bool requires_grad = false;
};

struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                // String; Global as "module.name"
  std::vector<Value*> items;                       // List, Tuple
  std::vector<std::pair<Value*, Value*>> entries;  // Dict, in insertion order
  StorageRef storage;                              // Storage
  TensorRef tensor;                                // Tensor

  bool is(Kind k) const { return kind == k; }
  // The value stored under string key `key` in a Dict, or nullptr.
  const Value* get(std::string_view key) const;
};

std::string_view kind_name(Kind k);

// Owns every Value of one parsed pickle (values may reference each other through the memo,
// so they live in an arena rather than owning one another).
class Document {
 public:
  const Value* root() const { return root_; }

 private:
  friend class Reader;
  std::vector<std::unique_ptr<Value>> arena_;
  const Value* root_ = nullptr;
};

// Parses `bytes`; errors say what is wrong and at which byte offset ("what" names the file).
Document parse(std::span<const std::byte> bytes, const std::string& what);

}  // namespace cosy::pickle
