#include "server/quality_guard_request.h"

#include <string>

#include "server/api_error.h"

namespace cosy::server {
namespace {

using Json = nlohmann::json;

int64_t integer(const Json& v, const std::string& key) {
  if (!v.is_number_integer() || v.get<int64_t>() < -1000000 || v.get<int64_t>() > 1000000)
    invalid("quality_guard", "'quality_guard.", key, "' must be an integer");
  return v.get<int64_t>();
}

double number(const Json& v, const std::string& key) {
  if (!v.is_number()) invalid("quality_guard", "'quality_guard.", key, "' must be a number");
  return v.get<double>();
}

bool boolean(const Json& v, const std::string& key) {
  if (!v.is_boolean()) invalid("quality_guard", "'quality_guard.", key, "' must be a boolean");
  return v.get<bool>();
}

}  // namespace

QualityGuardOptions merge_quality_guard(const QualityGuardOptions& base, const Json& v) {
  QualityGuardOptions g = base;
  if (v.is_null()) return g;
  if (v.is_boolean()) {
    g.enabled = v.get<bool>();
  } else if (v.is_object()) {
    g.enabled = true;  // asking for settings asks for the guard
    for (const auto& [key, x] : v.items()) {
      if (key == "enabled")
        g.enabled = boolean(x, key);
      else if (key == "max_run")
        g.max_run = integer(x, key);
      else if (key == "loop_min_period")
        g.loop_min_period = integer(x, key);
      else if (key == "loop_max_period")
        g.loop_max_period = integer(x, key);
      else if (key == "loop_repeats")
        g.loop_repeats = integer(x, key);
      else if (key == "max_silent_run")
        g.max_silent_run = integer(x, key);
      else if (key == "lookahead")
        g.lookahead = integer(x, key);
      else if (key == "entropy_window")
        g.entropy_window = integer(x, key);
      else if (key == "entropy_ratio")
        g.entropy_ratio = number(x, key);
      else if (key == "entropy_floor")
        g.entropy_floor = number(x, key);
      else if (key == "mask")
        g.mask = boolean(x, key);
      else if (key == "rollback")
        g.rollback = boolean(x, key);
      else if (key == "rollback_after_masks")
        g.rollback_after_masks = integer(x, key);
      else if (key == "max_rollbacks")
        g.max_rollbacks = integer(x, key);
      else if (key == "max_regenerations")
        g.max_regenerations = integer(x, key);
      else if (key == "end_on_ratio")
        g.end_on_ratio = boolean(x, key);
      else if (key == "ratio_slack")
        g.ratio_slack = number(x, key);
      else if (key == "silent_tokens") {
        if (!x.is_array() || x.size() > 1000)
          invalid("quality_guard", "'quality_guard.silent_tokens' must be an array of ids");
        g.silent_tokens.clear();
        for (const Json& id : x) g.silent_tokens.push_back(static_cast<int32_t>(integer(id, key)));
      } else {
        invalid("quality_guard", "unknown field 'quality_guard.", key, "'");
      }
    }
  } else {
    invalid("quality_guard", "'quality_guard' must be true, false or an object of settings");
  }
  try {
    g.validate();
  } catch (const Error& e) {
    invalid("quality_guard", e.what());
  }
  return g;
}

}  // namespace cosy::server
