#include <array>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/pickle.h"

namespace cosy::pickle {

std::string_view kind_name(Kind k) {
  static constexpr std::array<std::string_view, 11> names = {"None",   "bool",    "int",   "float",
                                                             "str",    "list",    "tuple", "dict",
                                                             "global", "storage", "tensor"};
  return names[static_cast<size_t>(k)];
}

const Value* Value::get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k->kind == Kind::String && k->text == key) return v;
  }
  return nullptr;
}

namespace {

constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr std::string_view kOrderedDict = "collections.OrderedDict";

struct StorageClass {
  std::string_view name;
  DType dtype;
};
constexpr std::array<StorageClass, 10> kStorages = {{
    {"torch.FloatStorage", DType::F32},
    {"torch.HalfStorage", DType::F16},
    {"torch.BFloat16Storage", DType::BF16},
    {"torch.LongStorage", DType::I64},
    {"torch.IntStorage", DType::I32},
    {"torch.BoolStorage", DType::Bool},
    {"torch.DoubleStorage", DType::F64},
    {"torch.ShortStorage", DType::I16},
    {"torch.CharStorage", DType::I8},
    {"torch.ByteStorage", DType::U8},
}};

const StorageClass* storage_class(std::string_view global) {
  for (const auto& s : kStorages) {
    if (s.name == global) return &s;
  }
  return nullptr;
}

bool allowed_global(std::string_view g) {
  return g == kRebuildTensor || g == kRebuildParameter || g == kOrderedDict ||
         storage_class(g) != nullptr;
}

}  // namespace

class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& what)
      : in_(bytes, what), what_(what) {}

  Document run() {
    while (true) {
      op_offset_ = in_.pos();
      if (in_.at_end()) error("ends without a STOP opcode (truncated)");
      const uint8_t op = in_.u8();
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      error("STOP with ", stack_.size(), " values on the stack");
    doc_.root_ = stack_.back();
    return std::move(doc_);
  }

 private:
  template <typename... Args>
  [[noreturn]] void error(Args&&... args) const {
    fail(what_, ": pickle byte ", op_offset_, ": ", std::forward<Args>(args)...);
  }

  Value* make(Kind k) {
    doc_.arena_.push_back(std::make_unique<Value>());
    doc_.arena_.back()->kind = k;
    return doc_.arena_.back().get();
  }
  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.size() <= base()) error("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= base()) error("stack underflow");
    return stack_.back();
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK.
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) error("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Value* integer(int64_t v) {
    Value* x = make(Kind::Int);
    x->integer = v;
    return x;
  }
  void memo_put(uint32_t idx) { memo_[idx] = top(); }
  void memo_get(uint32_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) error("memo index ", idx, " was never stored");
    push(it->second);
  }
  void set_items(Value* dict, const std::vector<Value*>& kv) {
    if (dict->kind != Kind::Dict) error("SETITEM(S) on a ", kind_name(dict->kind), ", not a dict");
    if (kv.size() % 2 != 0) error("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  void append_items(Value* list, const std::vector<Value*>& items) {
    if (list->kind != Kind::List) error("APPEND(S) on a ", kind_name(list->kind), ", not a list");
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = in_.u8();
        if (proto > 2)
          error("pickle protocol ", int(proto), " is not supported (torch.save writes protocol 2)");
        break;
      }
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(make(Kind::None));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        Value* b = make(Kind::Bool);
        b->boolean = op == 0x88;
        push(b);
        break;
      }
      case 'K':
        push(integer(in_.u8()));
        break;  // BININT1
      case 'M':
        push(integer(in_.u16()));
        break;  // BININT2
      case 'J':
        push(integer(in_.i32()));
        break;      // BININT
      case 0x8a: {  // LONG1
        const uint8_t n = in_.u8();
        if (n > 8) error("integer of ", int(n), " bytes is too large");
        uint64_t v = 0;
        auto b = in_.take(n);
        for (size_t i = 0; i < n; ++i)
          v |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
        if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
          v |= ~0ull << (8 * n);  // sign-extend
        push(integer(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian double)
        Value* f = make(Kind::Float);
        f->real = in_.f64_be();
        push(f);
        break;
      }
      case 'X':    // BINUNICODE
      case 'T':    // BINSTRING
      case 'U': {  // SHORT_BINSTRING
        const size_t n = op == 'U' ? in_.u8() : in_.u32();
        Value* s = make(Kind::String);
        s->text = std::string(in_.take_string(n));
        push(s);
        break;
      }
      case ']':
        push(make(Kind::List));
        break;     // EMPTY_LIST
      case 'l': {  // LIST
        Value* l = make(Kind::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case 'a': {  // APPEND
        Value* v = pop();
        append_items(top(), {v});
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        append_items(top(), items);
        break;
      }
      case ')':
        push(tuple({}));
        break;  // EMPTY_TUPLE
      case 't':
        push(tuple(pop_mark()));
        break;  // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84u;
        if (stack_.size() < base() + n) error("stack underflow in TUPLE", n);
        std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(tuple(std::move(items)));
        break;
      }
      case '}':
        push(make(Kind::Dict));
        break;     // EMPTY_DICT
      case 'd': {  // DICT
        Value* d = make(Kind::Dict);
        set_items(d, pop_mark());
        push(d);
        break;
      }
      case 's': {  // SETITEM
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'q':
        memo_put(in_.u8());
        break;  // BINPUT
      case 'r':
        memo_put(in_.u32());
        break;  // LONG_BINPUT
      case 'h':
        memo_get(in_.u8());
        break;  // BINGET
      case 'j':
        memo_get(in_.u32());
        break;     // LONG_BINGET
      case 'c': {  // GLOBAL
        std::string module(in_.line(256));
        std::string name(in_.line(256));
        std::string full = module + "." + name;
        if (!allowed_global(full)) {
          error("global '", full,
                "' is not allowed: only tensors and containers are loaded, nothing is executed");
        }
        Value* g = make(Kind::Global);
        g->text = std::move(full);
        push(g);
        break;
      }
      case 'Q':
        push(persistent(pop()));
        break;     // BINPERSID
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 'b': {  // BUILD: only OrderedDict's attribute state (torch's _metadata), which we drop
        Value* state = pop();
        Value* target = top();
        if (target->kind != Kind::Dict ||
            (state->kind != Kind::Dict && state->kind != Kind::None)) {
          error("BUILD on a ", kind_name(target->kind), " is not allowed");
        }
        break;
      }
      default:
        error("opcode 0x", hex(op), " is not supported by the restricted loader");
    }
  }

  static std::string hex(uint8_t v) {
    static const char* digits = "0123456789abcdef";
    return {digits[v >> 4], digits[v & 15]};
  }

  // ('storage', torch.XStorage, key, location, numel)
  Value* persistent(Value* pid) {
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::String ||
        pid->items[0]->text != "storage") {
      error("persistent id is not a torch storage record");
    }
    const auto& it = pid->items;
    const StorageClass* sc = it[1]->kind == Kind::Global ? storage_class(it[1]->text) : nullptr;
    if (sc == nullptr) error("persistent id names an unknown storage type");
    if (it[2]->kind != Kind::String || it[3]->kind != Kind::String || it[4]->kind != Kind::Int) {
      error("malformed storage record");
    }
    if (it[4]->integer < 0) error("storage with negative size");
    Value* s = make(Kind::Storage);
    s->storage = {sc->dtype, it[2]->text, it[3]->text, it[4]->integer};
    return s;
  }

  Shape int_tuple(const Value* v, const char* what) {
    if (v->kind != Kind::Tuple) error(what, " is not a tuple");
    Shape out;
    for (const Value* x : v->items) {
      if (x->kind != Kind::Int) error(what, " holds a non-integer");
      out.push_back(x->integer);
    }
    return out;
  }

  Value* reduce(Value* fn, Value* args) {
    if (fn->kind != Kind::Global) error("REDUCE on a ", kind_name(fn->kind), ", not a callable");
    if (args->kind != Kind::Tuple) error("REDUCE arguments are not a tuple");
    const auto& a = args->items;
    if (fn->text == kOrderedDict) {
      if (!a.empty()) error("OrderedDict with constructor arguments is not supported");
      return make(Kind::Dict);
    }
    if (fn->text == kRebuildParameter) {
      if (a.size() < 2 || a[0]->kind != Kind::Tensor) error("malformed _rebuild_parameter call");
      return a[0];
    }
    if (fn->text == kRebuildTensor) {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || a.size() > 7 || a[0]->kind != Kind::Storage || a[1]->kind != Kind::Int) {
        error("malformed _rebuild_tensor_v2 call");
      }
      Value* t = make(Kind::Tensor);
      t->tensor.storage = a[0]->storage;
      t->tensor.offset = a[1]->integer;
      t->tensor.shape = int_tuple(a[2], "tensor size");
      t->tensor.stride = int_tuple(a[3], "tensor stride");
      t->tensor.requires_grad = a[4]->kind == Kind::Bool && a[4]->boolean;
      if (t->tensor.shape.size() != t->tensor.stride.size())
        error("tensor size and stride differ in rank");
      return t;
    }
    error("cannot call '", fn->text, "'");
  }

  ByteReader in_;
  std::string what_;
  size_t op_offset_ = 0;
  Document doc_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Value*> memo_;
};

Document parse(std::span<const std::byte> bytes, const std::string& what) {
  return Reader(bytes, what).run();
}

}  // namespace cosy::pickle
