// The quality guard: watches one segment's speech tokens as the LM samples them and repairs
// what would make the listener hear babble, loops or held sounds, before any of it reaches
// the flow. The LM session consults it at every sampled token (inside the batched step: the
// log-probabilities are already on the host for the sampler, so no extra transfer).
//
// Detectors:
//  - run:      one token more than max_run times in a row;
//  - loop:     a period of loop_min_period..loop_max_period tokens repeated more than
//              loop_repeats times;
//  - silence:  more than max_silent_run tokens of the silent set in a row;
//  - babble:   the mean entropy of the last entropy_window tokens above entropy_ratio × the
//              segment's running level (and above entropy_floor nats);
//  - ratio:    speech tokens per text token outside the band the voice's own prompt implies
//              (its ratio ÷/× ratio_slack), kept within the official 2–20× bounds;
//  - nonfinite: NaN or Inf in the logits, the mel or the audio (always on: such a stream
//              fails and sends none of that audio).
// Actions:
//  - mask:       a token that would break the run, loop or silence bound is masked and the
//                step resamples from the rest of the distribution (repetition-aware, over
//                the loop window rather than RAS's 10 tokens);
//  - rollback:   after rollback_after_masks masks within the look-ahead, or on babble, the
//                last `lookahead` tokens are dropped (with their KV rows) and sampling goes
//                on from there with a new seed and tighter sampling;
//  - regenerate: after max_rollbacks rollbacks, everything not yet committed is drawn
//                again, at most max_regenerations times;
//  - end:        the segment ends when it reaches the top of the ratio band.
// The flow only ever sees committed tokens: `lookahead` tokens behind the LM while the
// guard is on, so a rollback never takes back audio that was already sent.
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"

namespace cosy {

struct QualityGuardOptions {
  bool enabled = false;
  int64_t max_run = 15;  // identical tokens in a row (25 Hz: 0.6 s of one sound)
  int64_t loop_min_period = 2;
  int64_t loop_max_period = 12;
  int64_t loop_repeats = 4;            // K: a period may repeat at most K times
  std::vector<int32_t> silent_tokens;  // ids that are silence (CosyVoice3 names its own)
  int64_t max_silent_run = 5;          // used when silent_tokens is not empty
  int64_t lookahead = 8;               // W: tokens held back from the flow
  int64_t entropy_window = 8;
  double entropy_ratio = 1.5;
  double entropy_floor = 2.0;   // nats; a stretch below this is never babble
  int64_t entropy_warmup = 16;  // tokens before the running level is trusted
  bool mask = true;
  bool rollback = true;
  int64_t rollback_after_masks = 3;
  int64_t max_rollbacks = 4;
  int64_t max_regenerations = 1;
  double tighten = 0.8;  // a rollback resamples at temperature × this and top_p × this
  bool end_on_ratio = true;
  double ratio_slack = 2.5;

  ConfigFields fields() const;
  std::string to_string() const;
  void validate() const;  // an Error names the bad field
  // Unknown silent ids are an Error (they depend on the model's vocabulary).
  void check_vocabulary(int64_t speech_tokens) const;
};

enum class QualityDetector { Run, Loop, Silence, Babble, Ratio, NonFinite };
const char* quality_detector_name(QualityDetector d);

// What the guard saw and did, per segment, and summed over a request's segments.
struct QualityReport {
  bool enabled = false;
  int64_t runs = 0, loops = 0, silences = 0, babble = 0, ratio = 0, nonfinite = 0;
  int64_t masked = 0;     // tokens masked and resampled in the step
  int64_t rollbacks = 0;  // look-ahead windows dropped and resampled
  int64_t rolled_back_tokens = 0;
  int64_t regenerations = 0;
  int64_t ended = 0;        // segments ended at the top of the ratio band
  int64_t longest_run = 0;  // of one token, in the output
  int64_t tokens = 0, text_tokens = 0;
  int64_t entropy_count = 0;
  double entropy_sum = 0, entropy_max = 0;

  void count(QualityDetector d);
  double entropy_mean() const { return entropy_count > 0 ? entropy_sum / entropy_count : 0; }
  double length_ratio() const {
    return text_tokens > 0 ? static_cast<double>(tokens) / static_cast<double>(text_tokens) : 0;
  }
  int64_t detections() const { return runs + loops + silences + babble + ratio + nonfinite; }
  void add(const QualityReport& segment);  // a request's segments, in order
  nlohmann::json to_json() const;
};

// No NaN or Inf in `v` (logits, mel, audio: the nonfinite detector).
bool all_finite(std::span<const float> v);

// Longest run of one id.
int64_t longest_run(std::span<const int32_t> tokens);
// The most times a period p in [min_period, max_period] repeats back to back anywhere in
// `tokens` (runs of one id are not loops); 1 when nothing repeats.
int64_t most_loop_repeats(std::span<const int32_t> tokens, int64_t min_period, int64_t max_period);

// One segment's detectors. Holds only counts and running levels; the session owns the tokens.
class QualityMonitor {
 public:
  QualityMonitor() = default;
  explicit QualityMonitor(const QualityGuardOptions& options);

  bool enabled() const { return opt_.enabled; }
  const QualityGuardOptions& options() const { return opt_; }

  // The ids that may not follow `tokens` (runs, loops, silence at their bounds), the
  // detector that first forbids each; empty when any id may come next.
  struct Forbidden {
    int32_t id;
    QualityDetector by;
  };
  std::vector<Forbidden> forbidden_next(std::span<const int32_t> tokens) const;

  // A sampled token's entropy (nats). Returns true when the last entropy_window tokens
  // form a babble stretch against the segment's running level.
  bool observe_entropy(double entropy);
  // A rollback dropped the last n observations.
  void forget(int64_t n);
  // A mask at output position `at`; true when enough masks fall within the look-ahead
  // behind it that the stream should roll back.
  bool note_mask(int64_t at);

  QualityReport& report() { return report_; }
  const QualityReport& report() const { return report_; }

 private:
  QualityGuardOptions opt_;
  QualityReport report_;
  std::deque<double> recent_;  // the last entropy_window entropies
  double level_sum_ = 0;       // entropies before the window: the running level
  int64_t level_count_ = 0;
  std::deque<int64_t> masks_;  // output positions of recent masks
};

}  // namespace cosy
