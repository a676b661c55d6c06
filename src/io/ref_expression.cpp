#include "io/ref_expression.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace cosy {
namespace {

struct NotArithmetic {};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Number parse() {
    Number v = sum();
    ws();
    if (p_ != s_.size()) throw NotArithmetic{};
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void ws() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
  }
  bool eat(std::string_view tok) {
    ws();
    if (s_.substr(p_, tok.size()) == tok) {
      p_ += tok.size();
      return true;
    }
    return false;
  }
  static double as_double(Number n) {
    return std::visit([](auto v) { return static_cast<double>(v); }, n);
  }
  static bool both_int(Number a, Number b) { return a.index() == 0 && b.index() == 0; }

  Number sum() {
    Number v = product();
    while (true) {
      if (eat("+")) {
        v = add(v, product(), +1);
      } else if (eat("-")) {
        v = add(v, product(), -1);
      } else {
        return v;
      }
    }
  }
  static Number add(Number a, Number b, int sign) {
    if (both_int(a, b)) {
      int64_t r;
      const bool ovf = sign > 0 ? __builtin_add_overflow(std::get<0>(a), std::get<0>(b), &r)
                                : __builtin_sub_overflow(std::get<0>(a), std::get<0>(b), &r);
      if (ovf) fail("integer overflow in !ref expression");
      return r;
    }
    return as_double(a) + sign * as_double(b);
  }
  Number product() {
    Number v = unary();
    while (true) {
      ws();
      if (eat("//")) {
        Number b = unary();
        if (as_double(b) == 0) fail("division by zero in !ref expression");
        if (both_int(v, b)) {
          const int64_t x = std::get<0>(v), y = std::get<0>(b);
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // floor, as Python
          v = q;
        } else {
          v = std::floor(as_double(v) / as_double(b));
        }
      } else if (eat("*")) {
        Number b = unary();
        if (both_int(v, b)) {
          int64_t r;
          if (__builtin_mul_overflow(std::get<0>(v), std::get<0>(b), &r))
            fail("integer overflow in !ref expression");
          v = r;
        } else {
          v = as_double(v) * as_double(b);
        }
      } else if (eat("/")) {
        Number b = unary();
        if (as_double(b) == 0) fail("division by zero in !ref expression");
        v = as_double(v) / as_double(b);
      } else if (eat("%")) {
        Number b = unary();
        if (as_double(b) == 0) fail("division by zero in !ref expression");
        if (both_int(v, b)) {
          const int64_t x = std::get<0>(v), y = std::get<0>(b);
          int64_t m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) m += y;
          v = m;
        } else {
          const double x = as_double(v), y = as_double(b);
          v = x - y * std::floor(x / y);
        }
      } else {
        return v;
      }
    }
  }
  Number unary() {
    if (eat("-")) {
      Number v = unary();
      if (v.index() == 0) {
        if (std::get<0>(v) == INT64_MIN) fail("integer overflow in !ref expression");
        return -std::get<0>(v);
      }
      return -std::get<1>(v);
    }
    if (eat("+")) return unary();
    return power();
  }
  Number power() {
    Number base = atom();
    if (!eat("**")) return base;
    Number exp = unary();  // right-associative, binds tighter than unary minus on the left
    if (both_int(base, exp) && std::get<0>(exp) >= 0) {
      int64_t r = 1;
      for (int64_t i = 0; i < std::get<0>(exp); ++i) {
        if (__builtin_mul_overflow(r, std::get<0>(base), &r))
          fail("integer overflow in !ref expression");
        if (r == 0 || r == 1) break;
      }
      return r;
    }
    return std::pow(as_double(base), as_double(exp));
  }
  Number atom() {
    ws();
    if (eat("(")) {
      if (++depth_ > kMaxDepth) throw NotArithmetic{};
      Number v = sum();
      if (!eat(")")) throw NotArithmetic{};
      --depth_;
      return v;
    }
    const size_t start = p_;
    bool is_float = false;
    while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    if (p_ < s_.size() && s_[p_] == '.') {
      is_float = true;
      ++p_;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    if (p_ == start || (p_ == start + 1 && is_float)) throw NotArithmetic{};
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      is_float = true;
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      const size_t digits = p_;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
      if (p_ == digits) throw NotArithmetic{};
    }
    const std::string text(s_.substr(start, p_ - start));
    if (is_float) return std::strtod(text.c_str(), nullptr);
    errno = 0;
    const long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) fail("integer '", text, "' out of range in !ref expression");
    return static_cast<int64_t>(v);
  }

  std::string_view s_;
  size_t p_ = 0;
  int depth_ = 0;
};

}  // namespace

std::optional<Number> evaluate_arithmetic(std::string_view expr) {
  try {
    return Parser(expr).parse();
  } catch (const NotArithmetic&) {
    return std::nullopt;
  }
}

}  // namespace cosy
