// The speech LM teacher-forced over one whole sequence (one prefill): its top-1 prediction at
// each position, and what its logits hold. `cosyserve audit` and `llm_bench` compare weight
// formats this way: the same inputs for every format, so a disagreement is the format's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/lm/speech_lm.h"

namespace cosy {

struct TeacherForced {
  std::vector<int32_t> top1;  // the most likely next id after each position from `from` on
  int64_t nonfinite = 0;      // logits (at those positions) that are NaN or Inf
  double max_abs_logit = 0;   // the largest finite |logit| among them
};

// Feeds `seq` in one forward and reads the decoder's logits at positions [from, size).
TeacherForced teacher_forced(Backend& backend, const SpeechLm& lm, std::span<const LmInput> seq,
                             int64_t from = 0);

// The log-softmax of the next id after all of `seq`, computed from scratch in double
// precision (one forward, no cache shared with anything): a reference for decoders.
std::vector<double> next_token_logp(Backend& backend, const SpeechLm& lm,
                                    std::span<const LmInput> seq);

// Share of positions where two runs' top-1 agree (sizes must match).
double top1_agreement(const TeacherForced& a, const TeacherForced& b);

}  // namespace cosy
