// Per-stream token sampling for the speech LM. Every stream carries its own parameters and
// its own seeded generator, so streams batched together never share randomness and a
// seeded request is reproducible whatever else runs beside it.
//
// Methods:
//  - Ras: the official ras_sampling: nucleus sampling (top_p, at most top_k candidates);
//    when the pick already occurs at least win_size·tau_r times among the stream's last
//    win_size tokens, it is redrawn from the full distribution (repetition-aware).
//  - TopKTopP: temperature, then top_k (0: off) and top_p (1: off), then a draw.
//  - Greedy: the most likely id.
// Banned ids (EOS below the minimum length, ids that are invalid in a phase) get zero
// probability before anything else, so they can never be drawn.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/torch_generator.h"
#include "model/config.h"

namespace cosy {

enum class SamplingMethod { Ras, TopKTopP, Greedy };
const char* sampling_method_name(SamplingMethod m);
SamplingMethod parse_sampling_method(const std::string& s);  // "ras" | "top-k" | "greedy"

struct SamplingParams {
  SamplingMethod method = SamplingMethod::Ras;
  double temperature = 1.0;
  int64_t top_k = 25;
  double top_p = 0.8;
  int64_t win_size = 10;  // Ras
  double tau_r = 0.1;     // Ras
  uint64_t seed = 0;

  ConfigFields fields() const;
  std::string to_string() const;
  void validate() const;  // an Error names the bad field
};

// What the quality guard reads of one draw: the distribution sampled from (after the
// temperature, banned ids at zero) and the pick's place in it.
struct TokenStats {
  double entropy = 0;  // nats
  double top1 = 0;     // the most likely id's probability
  double chosen = 0;   // the picked id's probability
};

class TokenSampler {
 public:
  explicit TokenSampler(const SamplingParams& params);

  // Picks an id from the log-probabilities (or logits: only differences matter) `logp`.
  // `history` is the stream's earlier picks, newest last (Ras's window). With `stats`,
  // also measures the distribution (one extra multiply-add per id; no other effect).
  int32_t sample(std::span<const float> logp, std::span<const int32_t> banned,
                 std::span<const int32_t> history, TokenStats* stats = nullptr);
  // Draws again from the full distribution with `banned` at zero, as RAS's redraw does
  // (greedy: the best id left). When the ids left hold no mass, the most likely of them.
  int32_t resample(std::span<const float> logp, std::span<const int32_t> banned);
  // A rollback's fresh start: a new seed, and temperature and top_p scaled by `tighten`.
  void restart(uint64_t seed, double tighten);
  const SamplingParams& params() const { return params_; }

 private:
  // Normalised probabilities of logp / temperature with banned ids at zero, into probs_.
  // Returns false (probs_ all zero) when the ids left hold no mass.
  bool probabilities(std::span<const float> logp, std::span<const int32_t> banned);
  void measure(std::span<const float> logp, int32_t pick, TokenStats& stats) const;
  // Candidates by falling probability (ties: lower id first), cut at top_k and top_p.
  void candidates(int64_t top_k, double top_p);
  int32_t draw_candidate();
  int32_t draw_full();
  double uniform();

  SamplingParams params_;
  TorchGenerator rng_;
  std::vector<float> probs_;
  double log_sum_ = 0;  // log of the normaliser of probs_, relative to the max logit
  std::vector<int32_t> order_;
  size_t kept_ = 0;
};

}  // namespace cosy
