// Tests of the LM session and what drives it, without a model: a made-up vocabulary of 50
// speech ids (EOS 50, unused 51, fill 52) and 100 text ids.
#pragma once

#include <cstdint>

#include "runtime/lm_session.h"

namespace cosy::testing {

inline LmSessionLimits toy_lm_limits(int64_t max_positions = 1000) {
  LmSessionLimits l;
  l.vocab.speech_tokens = 50;
  l.text_vocab = 100;
  l.max_positions = max_positions;
  return l;
}

}  // namespace cosy::testing
