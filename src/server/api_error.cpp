#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace cosy::server {

std::string ApiError::json() const {
  nlohmann::json j = {{"error",
                       {{"message", what()},
                        {"type", type_},
                        {"param", param_.empty() ? nlohmann::json() : nlohmann::json(param_)},
                        {"code", code_}}}};
  return j.dump();
}

}  // namespace cosy::server
