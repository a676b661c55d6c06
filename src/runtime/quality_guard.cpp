#include "runtime/quality_guard.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy {

ConfigFields QualityGuardOptions::fields() const {
  std::string silent;
  for (int32_t id : silent_tokens) silent += (silent.empty() ? "" : ",") + cat(id);
  return {{"enabled", enabled ? "true" : "false"},
          {"max_run", cat(max_run)},
          {"loop_min_period", cat(loop_min_period)},
          {"loop_max_period", cat(loop_max_period)},
          {"loop_repeats", cat(loop_repeats)},
          {"silent_tokens", "[" + silent + "]"},
          {"max_silent_run", cat(max_silent_run)},
          {"lookahead", cat(lookahead)},
          {"entropy_window", cat(entropy_window)},
          {"entropy_ratio", cat(entropy_ratio)},
          {"entropy_floor", cat(entropy_floor)},
          {"entropy_warmup", cat(entropy_warmup)},
          {"mask", mask ? "true" : "false"},
          {"rollback", rollback ? "true" : "false"},
          {"rollback_after_masks", cat(rollback_after_masks)},
          {"max_rollbacks", cat(max_rollbacks)},
          {"max_regenerations", cat(max_regenerations)},
          {"tighten", cat(tighten)},
          {"end_on_ratio", end_on_ratio ? "true" : "false"},
          {"ratio_slack", cat(ratio_slack)}};
}

std::string QualityGuardOptions::to_string() const {
  return fields_to_string("QualityGuardOptions", fields());
}

void QualityGuardOptions::validate() const {
  if (max_run < 2) fail("quality guard: max_run must be >= 2, got ", max_run);
  if (loop_min_period < 2)
    fail("quality guard: loop_min_period must be >= 2, got ", loop_min_period);
  if (loop_max_period < loop_min_period || loop_max_period > 64)
    fail("quality guard: loop_max_period must be in [loop_min_period, 64], got ", loop_max_period);
  if (loop_repeats < 2) fail("quality guard: loop_repeats (K) must be >= 2, got ", loop_repeats);
  if (max_silent_run < 0) fail("quality guard: max_silent_run must be >= 0, got ", max_silent_run);
  if (lookahead < 0 || lookahead > 200)
    fail("quality guard: lookahead must be in [0, 200] tokens, got ", lookahead);
  if (entropy_window < 1) fail("quality guard: entropy_window must be >= 1, got ", entropy_window);
  if (!(entropy_ratio > 1) || !std::isfinite(entropy_ratio))
    fail("quality guard: entropy_ratio must be > 1, got ", entropy_ratio);
  if (!(entropy_floor >= 0)) fail("quality guard: entropy_floor must be >= 0, got ", entropy_floor);
  if (entropy_warmup < 0) fail("quality guard: entropy_warmup must be >= 0, got ", entropy_warmup);
  if (rollback_after_masks < 1)
    fail("quality guard: rollback_after_masks must be >= 1, got ", rollback_after_masks);
  if (max_rollbacks < 0) fail("quality guard: max_rollbacks must be >= 0, got ", max_rollbacks);
  if (max_regenerations < 0)
    fail("quality guard: max_regenerations must be >= 0, got ", max_regenerations);
  if (!(tighten > 0 && tighten <= 1))
    fail("quality guard: tighten must be in (0, 1], got ", tighten);
  if (!(ratio_slack >= 1) || !std::isfinite(ratio_slack))
    fail("quality guard: ratio_slack must be >= 1, got ", ratio_slack);
  if (rollback && lookahead == 0)
    fail("quality guard: rollback needs a lookahead of at least 1 token (or rollback off)");
}

void QualityGuardOptions::check_vocabulary(int64_t speech_tokens) const {
  for (int32_t id : silent_tokens) {
    if (id < 0 || id >= speech_tokens)
      fail("quality guard: silent token ", id, " is not a speech token id [0, ", speech_tokens,
           ")");
  }
}

const char* quality_detector_name(QualityDetector d) {
  switch (d) {
    case QualityDetector::Run:
      return "run";
    case QualityDetector::Loop:
      return "loop";
    case QualityDetector::Silence:
      return "silence";
    case QualityDetector::Babble:
      return "babble";
    case QualityDetector::Ratio:
      return "ratio";
    case QualityDetector::NonFinite:
      return "nonfinite";
  }
  return "?";
}

void QualityReport::count(QualityDetector d) {
  switch (d) {
    case QualityDetector::Run:
      ++runs;
      break;
    case QualityDetector::Loop:
      ++loops;
      break;
    case QualityDetector::Silence:
      ++silences;
      break;
    case QualityDetector::Babble:
      ++babble;
      break;
    case QualityDetector::Ratio:
      ++ratio;
      break;
    case QualityDetector::NonFinite:
      ++nonfinite;
      break;
  }
}

void QualityReport::add(const QualityReport& s) {
  enabled = enabled || s.enabled;
  runs += s.runs;
  loops += s.loops;
  silences += s.silences;
  babble += s.babble;
  ratio += s.ratio;
  nonfinite += s.nonfinite;
  masked += s.masked;
  rollbacks += s.rollbacks;
  rolled_back_tokens += s.rolled_back_tokens;
  regenerations += s.regenerations;
  ended += s.ended;
  longest_run = std::max(longest_run, s.longest_run);
  tokens += s.tokens;
  text_tokens += s.text_tokens;
  entropy_count += s.entropy_count;
  entropy_sum += s.entropy_sum;
  entropy_max = std::max(entropy_max, s.entropy_max);
}

nlohmann::json QualityReport::to_json() const {
  const auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  nlohmann::json j;
  j["guard"] = enabled;
  j["detected"] = {{"run", runs},      {"loop", loops},  {"silence", silences},
                   {"babble", babble}, {"ratio", ratio}, {"nonfinite", nonfinite}};
  j["actions"] = {{"masked", masked},
                  {"rollbacks", rollbacks},
                  {"rolled_back_tokens", rolled_back_tokens},
                  {"regenerations", regenerations},
                  {"ended", ended}};
  j["longest_run"] = longest_run;
  j["entropy_mean"] = round3(entropy_mean());
  j["entropy_max"] = round3(entropy_max);
  j["speech_tokens"] = tokens;
  j["text_tokens"] = text_tokens;
  j["length_ratio"] = round3(length_ratio());
  return j;
}

bool all_finite(std::span<const float> v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

int64_t longest_run(std::span<const int32_t> tokens) {
  int64_t best = 0, run = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    run = (i > 0 && tokens[i] == tokens[i - 1]) ? run + 1 : 1;
    best = std::max(best, run);
  }
  return best;
}

namespace {

bool constant(std::span<const int32_t> t) {
  return std::adjacent_find(t.begin(), t.end(), std::not_equal_to<>()) == t.end();
}

}  // namespace

int64_t most_loop_repeats(std::span<const int32_t> tokens, int64_t min_period, int64_t max_period) {
  const auto n = static_cast<int64_t>(tokens.size());
  int64_t best = 1;
  for (int64_t p = min_period; p <= max_period; ++p) {
    int64_t matched = 0;  // positions i with tokens[i] == tokens[i - p], back to back
    for (int64_t i = p; i < n; ++i) {
      matched =
          tokens[static_cast<size_t>(i)] == tokens[static_cast<size_t>(i - p)] ? matched + 1 : 0;
      const int64_t repeats = (matched + p) / p;
      if (repeats > best &&
          !constant(tokens.subspan(static_cast<size_t>(i - p + 1), static_cast<size_t>(p)))) {
        best = repeats;
      }
    }
  }
  return best;
}

QualityMonitor::QualityMonitor(const QualityGuardOptions& options) : opt_(options) {
  opt_.validate();
  report_.enabled = opt_.enabled;
}

std::vector<QualityMonitor::Forbidden> QualityMonitor::forbidden_next(
    std::span<const int32_t> tokens) const {
  std::vector<Forbidden> out;
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return out;
  const auto at = [&](int64_t i) { return tokens[static_cast<size_t>(i)]; };
  const auto add = [&](int32_t id, QualityDetector by) {
    for (const Forbidden& f : out) {
      if (f.id == id) return;
    }
    out.push_back({id, by});
  };
  // Run: the last id may not come again once it has come max_run times.
  int64_t run = 1;
  while (run < n && at(n - 1 - run) == at(n - 1)) ++run;
  if (run >= opt_.max_run) add(at(n - 1), QualityDetector::Run);
  // Loop: the id that would make the period's (K + 1)-th full repeat.
  const int64_t k = opt_.loop_repeats;
  for (int64_t p = opt_.loop_min_period; p <= opt_.loop_max_period && p <= n; ++p) {
    int64_t matched = 0;
    while (matched < k * p && n - 1 - matched - p >= 0 &&
           at(n - 1 - matched) == at(n - 1 - matched - p)) {
      ++matched;
    }
    // Appending at(n - p) makes a periodic stretch of matched + p + 1 tokens.
    if ((matched + 1 + p) / p > k && !constant(tokens.subspan(static_cast<size_t>(n - p))))
      add(at(n - p), QualityDetector::Loop);
  }
  // Silence: no more silent ids once max_silent_run have come in a row.
  if (!opt_.silent_tokens.empty()) {
    const auto silent = [&](int32_t id) {
      return std::find(opt_.silent_tokens.begin(), opt_.silent_tokens.end(), id) !=
             opt_.silent_tokens.end();
    };
    int64_t quiet = 0;
    while (quiet < n && silent(at(n - 1 - quiet))) ++quiet;
    if (quiet >= opt_.max_silent_run) {
      for (int32_t id : opt_.silent_tokens) add(id, QualityDetector::Silence);
    }
  }
  return out;
}

bool QualityMonitor::observe_entropy(double entropy) {
  ++report_.entropy_count;
  report_.entropy_sum += entropy;
  report_.entropy_max = std::max(report_.entropy_max, entropy);
  recent_.push_back(entropy);
  if (static_cast<int64_t>(recent_.size()) > opt_.entropy_window) {
    level_sum_ += recent_.front();
    ++level_count_;
    recent_.pop_front();
  }
  if (static_cast<int64_t>(recent_.size()) < opt_.entropy_window || level_count_ == 0 ||
      level_count_ < opt_.entropy_warmup) {
    return false;
  }
  double sum = 0;
  for (double h : recent_) sum += h;
  const double mean = sum / static_cast<double>(recent_.size());
  const double level = level_sum_ / static_cast<double>(level_count_);
  return mean > opt_.entropy_floor && mean > opt_.entropy_ratio * level;
}

void QualityMonitor::forget(int64_t n) {
  for (; n > 0 && !recent_.empty(); --n) recent_.pop_back();
}

bool QualityMonitor::note_mask(int64_t at) {
  masks_.push_back(at);
  while (!masks_.empty() && masks_.front() < at - std::max<int64_t>(opt_.lookahead, 1))
    masks_.pop_front();
  if (static_cast<int64_t>(masks_.size()) < opt_.rollback_after_masks) return false;
  masks_.clear();
  return true;
}

}  // namespace cosy
