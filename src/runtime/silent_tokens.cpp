#include "runtime/silent_tokens.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

SilentTokenCap::Options SilentTokenCap::cosyvoice3() {
  return {{1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323}, 5};
}

SilentTokenCap::SilentTokenCap(Options options) : opt_(std::move(options)) {
  if (opt_.max_run < 0) fail("silent token cap: max_run must not be negative");
}

bool SilentTokenCap::keep(int32_t token) {
  if (std::find(opt_.silent.begin(), opt_.silent.end(), token) == opt_.silent.end()) {
    run_ = 0;
    return true;
  }
  ++run_;
  return run_ <= opt_.max_run;
}

}  // namespace cosy
