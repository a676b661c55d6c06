#include "runtime/lm_decoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy {

void BeamSearchOptions::validate() const {
  if (num_beams < 1 || num_beams > kMaxBeams)
    fail("num_beams must be from 1 to ", kMaxBeams, ", not ", num_beams);
  if (!(length_penalty >= 0 && length_penalty <= 10))
    fail("length_penalty must be from 0 to 10, not ", length_penalty);
}

LmDecoder::LmDecoder(const LmSessionLimits& limits, LmSessionOptions options,
                     const BeamSearchOptions& beams)
    : beams_(beams), vocab_(limits.vocab) {
  beams_.validate();
  live_.push_back(std::make_unique<LmSession>(limits, std::move(options)));
  scores_.push_back(0);
}

void LmDecoder::push_text(std::span<const int32_t> ids) {
  if (!beam_search()) return live_.front()->push_text(ids);
  for (auto& h : live_) h->push_text(ids);
}

void LmDecoder::end_text() {
  if (!beam_search()) return live_.front()->end_text();
  for (auto& h : live_) h->end_text();
}

bool LmDecoder::ready() const {
  // Beam hypotheses advance in lockstep: all are ready or none is.
  return !finished() && !live_.empty() && live_.front()->ready();
}

void LmDecoder::cancel() {
  if (!beam_search()) return live_.front()->cancel();
  if (finished()) return;
  finish_ = LmFinish::Cancelled;
  for (auto& h : live_) h->cancel();
}

void LmDecoder::fail(std::string message) {
  if (!beam_search()) return live_.front()->fail(std::move(message));
  if (finished()) return;
  finish_ = LmFinish::Error;
  error_ = std::move(message);
  for (auto& h : live_) h->fail(error_);
}

const std::vector<int32_t>& LmDecoder::tokens() const {
  return beam_search() ? committed_ : live_.front()->tokens();
}

int64_t LmDecoder::committed_tokens() const {
  return beam_search() ? static_cast<int64_t>(committed_.size())
                       : live_.front()->committed_tokens();
}

QualityReport LmDecoder::quality_report() const {
  if (beam_search() && (finished() || live_.empty())) return report_;
  return live_.front()->quality_report();  // beams: the best live hypothesis so far
}

double LmDecoder::normalized(double score, int64_t tokens) const {
  return score / std::pow(static_cast<double>(std::max<int64_t>(tokens, 1)), beams_.length_penalty);
}

void LmDecoder::candidates_of(int parent, std::span<const float> logp) {
  const LmSession& h = *live_[static_cast<size_t>(parent)];
  const double score = scores_[static_cast<size_t>(parent)];
  LmStepRule rule = h.next_rule();
  if (rule.forced) {
    candidates_.push_back({score, parent, *rule.forced, false});
    return;
  }
  std::vector<int32_t>& banned = rule.banned;
  const auto guard = h.guard_forbidden();
  banned.insert(banned.end(), guard.begin(), guard.end());
  // A fill only at its official position keeps every hypothesis's schedule the same.
  if (h.interleaving()) banned.push_back(vocab_.fill());
  order_.clear();
  for (int32_t id = 0; id < static_cast<int32_t>(logp.size()); ++id) {
    if (std::find(banned.begin(), banned.end(), id) == banned.end()) order_.push_back(id);
  }
  const auto k = std::min(order_.size(), static_cast<size_t>(2 * beams_.num_beams));
  std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k), order_.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logp[static_cast<size_t>(a)];
                      const float lb = logp[static_cast<size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  for (size_t j = 0; j < k; ++j) {
    const int32_t id = order_[j];
    // In free decoding a stop id ends the hypothesis.
    const bool stop = id >= vocab_.speech_tokens && !h.interleaving();
    candidates_.push_back({score + logp[static_cast<size_t>(id)], parent, id, stop});
  }
}

void LmDecoder::add_finished(std::unique_ptr<LmSession> session, double score) {
  session->kv_seq = 0;  // its rows are no longer needed; the runner releases them
  const auto n = static_cast<int64_t>(session->tokens().size());
  finished_.push_back({std::move(session), score, normalized(score, n)});
  std::stable_sort(finished_.begin(), finished_.end(), [](const Finished& a, const Finished& b) {
    return a.normalized > b.normalized;
  });
  if (static_cast<int64_t>(finished_.size()) > beams_.num_beams) finished_.pop_back();
}

bool LmDecoder::search_done() const {
  if (live_.empty()) return true;
  if (static_cast<int64_t>(finished_.size()) < beams_.num_beams) return false;
  double best_live = -INFINITY;
  for (size_t i = 0; i < live_.size(); ++i) {
    best_live = std::max(best_live,
                         normalized(scores_[i], static_cast<int64_t>(live_[i]->tokens().size())));
  }
  return finished_.back().normalized >= best_live;
}

void LmDecoder::conclude() {
  live_.clear();
  scores_.clear();
  if (finished_.empty()) {
    finish_ = LmFinish::Error;
    error_ = "beam search: every continuation was banned";
    return;
  }
  const LmSession& best = *finished_.front().session;
  committed_ = best.tokens();
  report_ = best.quality_report();
  finish_ = best.finish_reason();
}

void LmDecoder::update_committed() {
  // The longest prefix every hypothesis, live or finished, shares.
  std::vector<const std::vector<int32_t>*> all;
  for (const auto& h : live_) all.push_back(&h->tokens());
  for (const auto& f : finished_) all.push_back(&f.session->tokens());
  size_t n = all.front()->size();
  for (const auto* t : all) {
    n = std::min(n, t->size());
    n = static_cast<size_t>(std::mismatch(all.front()->begin(),
                                          all.front()->begin() + static_cast<std::ptrdiff_t>(n),
                                          t->begin())
                                .first -
                            all.front()->begin());
  }
  committed_.assign(all.front()->begin(), all.front()->begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<int> LmDecoder::advance(std::span<const std::span<const float>> logps) {
  if (logps.size() != live_.size())
    cosy::fail("lm decoder: ", logps.size(), " rows of log-probs for ", live_.size(),
               " hypotheses");
  if (!beam_search()) {
    live_.front()->advance(logps.front());
    return {0};
  }
  candidates_.clear();
  for (size_t i = 0; i < live_.size(); ++i) {
    live_[i]->check_logp(logps[i]);
    candidates_of(static_cast<int>(i), logps[i]);
  }
  std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.parent != b.parent ? a.parent < b.parent : a.token < b.token;
  });
  // The best num_beams continuations that go on, and the stops among the best num_beams.
  const auto n = static_cast<size_t>(beams_.num_beams);
  std::vector<Candidate> picks;
  size_t going_on = 0;
  for (size_t r = 0; r < candidates_.size() && going_on < n; ++r) {
    const Candidate& c = candidates_[r];
    if (c.stop) {
      if (r < n) picks.push_back(c);
      continue;
    }
    picks.push_back(c);
    ++going_on;
  }
  try {
    return extend(picks, logps);
  } catch (const std::exception& ex) {
    live_.clear();  // some may be half moved: nothing of this search goes on
    scores_.clear();
    finish_ = LmFinish::Error;
    error_ = ex.what();
    throw;
  }
}

std::vector<int> LmDecoder::extend(std::span<const Candidate> picks,
                                   std::span<const std::span<const float>> logps) {
  // Each parent's first continuation takes the parent itself; the others copy it first.
  std::vector<std::unique_ptr<LmSession>> made(picks.size());
  std::vector<bool> owner(picks.size(), false), moved(live_.size(), false);
  for (size_t k = 0; k < picks.size(); ++k) {
    const auto p = static_cast<size_t>(picks[k].parent);
    if (!picks[k].stop && !moved[p]) owner[k] = moved[p] = true;
  }
  for (size_t k = 0; k < picks.size(); ++k) {
    if (!owner[k])
      made[k] = std::make_unique<LmSession>(*live_[static_cast<size_t>(picks[k].parent)]);
  }
  for (size_t k = 0; k < picks.size(); ++k) {
    if (owner[k]) made[k] = std::move(live_[static_cast<size_t>(picks[k].parent)]);
  }
  std::vector<std::unique_ptr<LmSession>> next;
  std::vector<double> next_scores;
  std::vector<int> parents;
  for (size_t k = 0; k < picks.size(); ++k) {
    const Candidate& c = picks[k];
    made[k]->advance(logps[static_cast<size_t>(c.parent)], c.token);
    if (made[k]->finished()) {
      add_finished(std::move(made[k]), c.score);
      continue;
    }
    next.push_back(std::move(made[k]));
    next_scores.push_back(c.score);
    parents.push_back(c.parent);
  }
  live_ = std::move(next);
  scores_ = std::move(next_scores);
  if (search_done()) {
    conclude();
    return {};
  }
  update_committed();
  return parents;
}

}  // namespace cosy
