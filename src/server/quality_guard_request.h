// A request's "quality_guard" field over the server's default guard (--guard ...): true or
// false turns it on or off; an object sets fields of runtime/quality_guard.h by name
// ({"max_run": 10, "loop_repeats": 3, "silent_tokens": [1, 2], ...}). Anything else, an
// unknown field or a value the guard refuses is a 400 naming the field.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/quality_guard.h"

namespace cosy::server {

QualityGuardOptions merge_quality_guard(const QualityGuardOptions& base, const nlohmann::json& v);

}  // namespace cosy::server
