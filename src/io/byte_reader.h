// Bounds-checked little-endian reads over untrusted bytes. Every parser starts here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace cosy {

class ByteReader {
 public:
  ByteReader(std::span<const std::byte> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ >= bytes_.size(); }
  void seek(size_t p) {
    if (p > bytes_.size())
      fail(what_, ": offset ", p, " is past the end (", bytes_.size(), " bytes)");
    pos_ = p;
  }
  void skip(size_t n) { seek(checked_end(n)); }

  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint16_t u16() { return load<uint16_t>(); }
  uint32_t u32() { return load<uint32_t>(); }
  uint64_t u64() { return load<uint64_t>(); }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  double f64_be() {
    uint64_t v = 0;
    for (std::byte b : take(8)) v = (v << 8) | static_cast<uint8_t>(b);
    double d;
    std::memcpy(&d, &v, 8);
    return d;
  }
  std::span<const std::byte> take(size_t n) {
    const size_t end = checked_end(n);
    auto out = bytes_.subspan(pos_, n);
    pos_ = end;
    return out;
  }
  std::string_view take_string(size_t n) {
    auto s = take(n);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  // Reads up to and excluding '\n' (consumed); fails if no newline within `max` bytes.
  std::string_view line(size_t max) {
    for (size_t i = pos_; i < bytes_.size() && i - pos_ <= max; ++i) {
      if (bytes_[i] == std::byte{'\n'}) {
        std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), i - pos_);
        pos_ = i + 1;
        return s;
      }
    }
    fail(what_, ": unterminated line at offset ", pos_);
  }
  const std::string& what() const { return what_; }

 private:
  size_t checked_end(size_t n) const {
    if (n > bytes_.size() - pos_) {
      fail(what_, ": truncated (needed ", n, " bytes at offset ", pos_, ", ", bytes_.size() - pos_,
           " left)");
    }
    return pos_ + n;
  }
  template <typename T>
  T load() {
    T v;
    std::memcpy(&v, take(sizeof(T)).data(), sizeof(T));
    return v;  // the hosts we build for are little-endian (checked in mapped_file.cpp)
  }

  std::span<const std::byte> bytes_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace cosy
