// Errors as an OpenAI-compatible API reports them: an HTTP status and the JSON body
// {"error": {"message", "type", "param", "code"}}. Every request problem the server can name
// is an ApiError; anything else becomes a 500 with a generic message (and is logged).
#pragma once

#include <string>

#include "core/error.h"

namespace cosy::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string type, std::string param, std::string code,
           const std::string& message)
      : Error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // "" when no single field is at fault
  const std::string& code() const { return code_; }
  std::string json() const;  // the OpenAI error body

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400 invalid_request_error naming the field.
template <typename... Args>
[[noreturn]] void invalid(const std::string& param, Args&&... args) {
  throw ApiError(400, "invalid_request_error", param, "invalid_value",
                 cat(std::forward<Args>(args)...));
}

}  // namespace cosy::server
