// Evaluates the arithmetic hyperpyyaml allows after `!ref` substitution, with Python's
// semantics for the operators used in model configs: + - * / // % ** and parentheses.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

namespace cosy {

using Number = std::variant<int64_t, double>;

// The value of `expr`, or nullopt when it is not a well-formed arithmetic expression (the
// caller then treats the text as a string). Arithmetic errors (division by zero,
// integer overflow) throw cosy::Error.
std::optional<Number> evaluate_arithmetic(std::string_view expr);

}  // namespace cosy
