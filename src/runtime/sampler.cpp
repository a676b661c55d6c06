#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/simd_state.h"

namespace cosy {

const char* sampling_method_name(SamplingMethod m) {
  switch (m) {
    case SamplingMethod::Ras:
      return "ras";
    case SamplingMethod::TopKTopP:
      return "top-k";
    case SamplingMethod::Greedy:
      return "greedy";
  }
  return "?";
}

SamplingMethod parse_sampling_method(const std::string& s) {
  if (s == "ras") return SamplingMethod::Ras;
  if (s == "top-k" || s == "top-p" || s == "topk") return SamplingMethod::TopKTopP;
  if (s == "greedy") return SamplingMethod::Greedy;
  fail("unknown sampling method '", s, "' (expected ras, top-k or greedy)");
}

ConfigFields SamplingParams::fields() const {
  return {{"method", sampling_method_name(method)},
          {"temperature", cat(temperature)},
          {"top_k", cat(top_k)},
          {"top_p", cat(top_p)},
          {"win_size", cat(win_size)},
          {"tau_r", cat(tau_r)},
          {"seed", cat(seed)}};
}

std::string SamplingParams::to_string() const {
  return fields_to_string("SamplingParams", fields());
}

void SamplingParams::validate() const {
  if (!(temperature > 0) || !std::isfinite(temperature))
    fail("sampling: temperature must be positive, got ", temperature);
  if (top_k < 0) fail("sampling: top_k must be >= 0, got ", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("sampling: top_p must be in (0, 1], got ", top_p);
  if (method == SamplingMethod::Ras) {
    if (top_k < 1) fail("sampling: ras needs top_k >= 1");
    if (win_size < 1) fail("sampling: win_size must be >= 1, got ", win_size);
    if (!(tau_r >= 0)) fail("sampling: tau_r must be >= 0, got ", tau_r);
  }
}

TokenSampler::TokenSampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

double TokenSampler::uniform() {
  // 53 random bits, in [0, 1).
  const uint64_t hi = rng_.next_u32() >> 5, lo = rng_.next_u32() >> 6;
  return (static_cast<double>(hi) * 67108864.0 + static_cast<double>(lo)) / 9007199254740992.0;
}

bool TokenSampler::probabilities(std::span<const float> logp, std::span<const int32_t> banned) {
  const size_t n = logp.size();
  probs_.resize(n);
  const double inv_t = 1.0 / params_.temperature;
  float mx = -std::numeric_limits<float>::infinity();
  for (float v : logp) mx = std::max(mx, v);
  if (!std::isfinite(mx)) fail("sampling: no finite log-probability");
  clear_simd_upper_state();  // one std::exp per id
  for (size_t i = 0; i < n; ++i)
    probs_[i] = static_cast<float>(std::exp((static_cast<double>(logp[i]) - mx) * inv_t));
  for (int32_t b : banned) {
    if (b >= 0 && static_cast<size_t>(b) < n) probs_[static_cast<size_t>(b)] = 0.0f;
  }
  double sum = 0;
  for (float p : probs_) sum += p;
  if (!(sum > 0)) return false;
  log_sum_ = std::log(sum);
  const auto inv = static_cast<float>(1.0 / sum);
  for (float& p : probs_) p *= inv;
  return true;
}

void TokenSampler::measure(std::span<const float> logp, int32_t pick, TokenStats& stats) const {
  // H = log Z − Σ p·y with y = (logp − max) / T: no logarithm per id.
  float mx = -std::numeric_limits<float>::infinity();
  for (float v : logp) mx = std::max(mx, v);
  const double inv_t = 1.0 / params_.temperature;
  double py = 0, top = 0;
  for (size_t i = 0; i < probs_.size(); ++i) {
    const double p = probs_[i];
    if (p == 0) continue;
    py += p * (static_cast<double>(logp[i]) - mx) * inv_t;
    top = std::max(top, p);
  }
  stats.entropy = std::max(0.0, log_sum_ - py);
  stats.top1 = top;
  stats.chosen = probs_[static_cast<size_t>(pick)];
}

void TokenSampler::candidates(int64_t top_k, double top_p) {
  const auto n = static_cast<int64_t>(probs_.size());
  order_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  const int64_t k = top_k > 0 ? std::min(top_k, n) : n;
  auto by_prob = [&](int32_t a, int32_t b) {
    const float pa = probs_[static_cast<size_t>(a)], pb = probs_[static_cast<size_t>(b)];
    return pa > pb || (pa == pb && a < b);  // torch's stable descending sort
  };
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), by_prob);
  // The official loop: keep adding while the mass so far is below top_p.
  double cum = 0;
  kept_ = 0;
  while (static_cast<int64_t>(kept_) < k && cum < top_p) {
    cum += probs_[static_cast<size_t>(order_[kept_])];
    ++kept_;
  }
  // Banned ids sort last with zero mass; never keep them.
  while (kept_ > 1 && probs_[static_cast<size_t>(order_[kept_ - 1])] == 0.0f) --kept_;
}

int32_t TokenSampler::draw_candidate() {
  double total = 0;
  for (size_t i = 0; i < kept_; ++i) total += probs_[static_cast<size_t>(order_[i])];
  const double u = uniform() * total;
  double cum = 0;
  for (size_t i = 0; i < kept_; ++i) {
    cum += probs_[static_cast<size_t>(order_[i])];
    if (u < cum) return order_[i];
  }
  return order_[kept_ - 1];
}

int32_t TokenSampler::draw_full() {
  const double u = uniform();
  double cum = 0;
  int32_t last = 0;
  for (size_t i = 0; i < probs_.size(); ++i) {
    if (probs_[i] == 0.0f) continue;
    cum += probs_[i];
    last = static_cast<int32_t>(i);
    if (u < cum) return last;
  }
  return last;  // rounding left u just above the total
}

namespace {

int32_t best_allowed(std::span<const float> logp, std::span<const int32_t> banned) {
  int32_t best = -1;
  for (size_t i = 0; i < logp.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (std::find(banned.begin(), banned.end(), id) != banned.end()) continue;
    if (best < 0 || logp[i] > logp[static_cast<size_t>(best)]) best = id;
  }
  if (best < 0) fail("sampling: every id is banned");
  return best;
}

}  // namespace

int32_t TokenSampler::sample(std::span<const float> logp, std::span<const int32_t> banned,
                             std::span<const int32_t> history, TokenStats* stats) {
  if (logp.empty()) fail("sampling: empty distribution");
  int32_t pick = 0;
  if (params_.method == SamplingMethod::Greedy) {
    pick = best_allowed(logp, banned);
    if (stats != nullptr && probabilities(logp, banned)) measure(logp, pick, *stats);
    return pick;
  }
  if (!probabilities(logp, banned)) fail("sampling: every id is banned");
  candidates(params_.top_k, params_.top_p);
  pick = draw_candidate();
  if (params_.method == SamplingMethod::Ras) {
    const size_t win = std::min(history.size(), static_cast<size_t>(params_.win_size));
    const auto repeats =
        std::count(history.end() - static_cast<std::ptrdiff_t>(win), history.end(), pick);
    if (static_cast<double>(repeats) >= static_cast<double>(params_.win_size) * params_.tau_r)
      pick = draw_full();
  }
  if (stats != nullptr) measure(logp, pick, *stats);
  return pick;
}

int32_t TokenSampler::resample(std::span<const float> logp, std::span<const int32_t> banned) {
  if (params_.method == SamplingMethod::Greedy || !probabilities(logp, banned))
    return best_allowed(logp, banned);
  return draw_full();
}

void TokenSampler::restart(uint64_t seed, double tighten) {
  rng_.manual_seed(seed);
  params_.temperature *= tighten;
  params_.top_p *= tighten;
}

}  // namespace cosy
