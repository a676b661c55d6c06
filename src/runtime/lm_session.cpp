#include "runtime/lm_session.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy {

const char* lm_finish_name(LmFinish f) {
  switch (f) {
    case LmFinish::None:
      return "none";
    case LmFinish::Eos:
      return "eos";
    case LmFinish::MaxLength:
      return "max_length";
    case LmFinish::Cancelled:
      return "cancelled";
    case LmFinish::Error:
      return "error";
  }
  return "?";
}

LmSessionLimits LmSessionLimits::of(const SpeechLm& lm) {
  LmSessionLimits l;
  l.vocab = lm.vocab();
  l.text_vocab = lm.text_vocab();
  const auto& mix = lm.config().mix_ratio;
  if (mix.size() == 2) {
    l.mix_text = mix[0];
    l.mix_speech = mix[1];
  }
  l.max_positions = lm.config().qwen.max_position_embeddings;
  // The official code's id of <|endofprompt|> in the Qwen tokenizer.
  if (lm.config().family == ModelFamily::CosyVoice3) l.end_of_prompt = 151646;
  return l;
}

namespace {

void append(std::vector<LmInput>& to, std::span<const int32_t> ids, LmInputKind kind) {
  for (int32_t id : ids) to.push_back({kind, id});
}

// Moves the first n items of `from` to the end of `to`.
void take(std::vector<LmInput>& from, size_t n, std::vector<LmInput>& to) {
  n = std::min(n, from.size());
  to.insert(to.end(), from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
  from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace

LmSession::LmSession(const LmSessionLimits& limits, LmSessionOptions options)
    : limits_(limits), opt_(std::move(options)), sampler_(opt_.sampling), monitor_(opt_.guard) {
  opt_.guard.check_vocabulary(limits_.vocab.speech_tokens);
  if (!opt_.prompt_text.empty() && !opt_.prompt_speech.empty()) {
    prompt_ratio_ = static_cast<double>(opt_.prompt_speech.size()) /
                    static_cast<double>(opt_.prompt_text.size());
  }
  if (limits_.mix_text <= 0 || limits_.mix_speech <= 0) cosy::fail("lm session: bad mix ratio");
  if (!(opt_.min_token_text_ratio >= 0) || !(opt_.max_token_text_ratio > 0))
    cosy::fail("lm session: token/text ratios must be positive");
  if (opt_.fixed_tokens < 0) cosy::fail("lm session: fixed_tokens must be >= 0");
  if (!(opt_.forced_tokens_per_text_token >= 0))
    cosy::fail("lm session: forced_tokens_per_text_token must be >= 0");
  check_text(opt_.prompt_text, "prompt text");
  check_text(opt_.text, "text");
  const auto end_of_prompt_in = [&](std::span<const int32_t> ids) {
    return std::find(ids.begin(), ids.end(), limits_.end_of_prompt) != ids.end();
  };
  if (limits_.end_of_prompt >= 0 && !end_of_prompt_in(opt_.prompt_text) &&
      (opt_.bistream || !end_of_prompt_in(opt_.text))) {
    cosy::fail("CosyVoice3 needs <|endofprompt|> (id ", limits_.end_of_prompt, ") in the ",
               opt_.bistream ? "prompt text of a bistream request"
                             : "prompt text or the text (an instruction ends with it)");
  }
  for (size_t i = 0; i < opt_.prompt_speech.size(); ++i) {
    const int32_t t = opt_.prompt_speech[i];
    if (t < 0 || t >= limits_.vocab.speech_tokens) {
      cosy::fail("prompt speech token ", t, " at ", i, " is outside [0, ",
                 limits_.vocab.speech_tokens, ")");
    }
  }
  const auto prompt = static_cast<int64_t>(2 + opt_.prompt_text.size() + opt_.prompt_speech.size());
  if (limits_.max_positions > 0 && prompt > limits_.max_positions) {
    cosy::fail("the prompt takes ", prompt, " positions; the LM's context is ",
               limits_.max_positions);
  }
  text_len_ = static_cast<int64_t>(opt_.text.size());
  if (!opt_.bistream) {
    if (opt_.text.empty()) cosy::fail("empty text: nothing to synthesize");
    const int64_t total = prompt + text_len_;
    if (limits_.max_positions > 0 && total > limits_.max_positions) {
      cosy::fail("prompt and text take ", total, " positions; the LM's context is ",
                 limits_.max_positions);
    }
    lm_input_.push_back({LmInputKind::Sos, 0});
    append(lm_input_, opt_.prompt_text, LmInputKind::Text);
    append(lm_input_, opt_.text, LmInputKind::Text);
    lm_input_.push_back({LmInputKind::TaskId, 0});
    append(lm_input_, opt_.prompt_speech, LmInputKind::Speech);
    phase_ = Phase::Free;
    ready_ = true;
    return;
  }
  phase_ = Phase::Interleave;
  lm_input_.push_back({LmInputKind::Sos, 0});
  std::span<const int32_t> cached_prompt(opt_.prompt_text);
  if (limits_.end_of_prompt >= 0) {
    // CosyVoice3: the instruction up to <|endofprompt|> goes in at once, behind sos; only
    // the transcript after it joins the interleaved text.
    const auto eop = std::find(cached_prompt.begin(), cached_prompt.end(), limits_.end_of_prompt);
    const auto head = static_cast<size_t>(eop - cached_prompt.begin()) + 1;
    append(lm_input_, cached_prompt.first(head), LmInputKind::Text);
    cached_prompt = cached_prompt.subspan(head);
  }
  append(text_cache_, cached_prompt, LmInputKind::Text);
  append(prompt_speech_, opt_.prompt_speech, LmInputKind::Speech);
  // The first forced fill comes where the prompt's last partial block of speech completes.
  const auto p = static_cast<int64_t>(opt_.prompt_speech.size());
  next_fill_ = (p / limits_.mix_speech + 1) * limits_.mix_speech - p;
  append(text_cache_, opt_.text, LmInputKind::Text);
  schedule();
}

int64_t LmSession::voice_prefix() const {
  if (opt_.bistream || !fed_.empty() || !replay_.empty() || finished()) return 0;
  return 1 + static_cast<int64_t>(opt_.prompt_text.size());
}

void LmSession::check_text(std::span<const int32_t> ids, const char* what) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= limits_.text_vocab) {
      cosy::fail(what, " id ", ids[i], " at ", i, " is outside the text vocabulary [0, ",
                 limits_.text_vocab, ")");
    }
  }
}

void LmSession::push_text(std::span<const int32_t> ids) {
  if (!opt_.bistream) cosy::fail("push_text: this stream was given all its text at the start");
  if (text_ended_) cosy::fail("push_text: the text already ended");
  check_text(ids, "text");
  if (finished()) return;
  text_len_ += static_cast<int64_t>(ids.size());
  append(text_cache_, ids, LmInputKind::Text);
  schedule();
}

void LmSession::end_text() {
  if (!opt_.bistream) cosy::fail("end_text: this stream was given all its text at the start");
  if (text_ended_) return;
  text_ended_ = true;
  if (!finished()) schedule();
}

void LmSession::schedule() {
  if (phase_ != Phase::Interleave || ready_ || finished()) return;
  const auto m0 = static_cast<size_t>(limits_.mix_text);
  const auto m1 = static_cast<size_t>(limits_.mix_speech);
  while (!prompt_speech_.empty() && text_cache_.size() >= m0) {
    take(text_cache_, m0, lm_input_);
    take(prompt_speech_, m1, lm_input_);
  }
  if (!prompt_speech_.empty()) {
    if (text_ended_) go_final();
    return;
  }
  const int32_t fill = limits_.vocab.fill();
  const bool after_fill = !history_.empty() && history_.back() == fill;
  const bool at_start = history_.empty() && lm_input_.size() == 1;
  if (after_fill || at_start) {
    if (text_cache_.size() < m0) {
      if (text_ended_) go_final();
      return;  // wait for text
    }
    if (after_fill) lm_input_.clear();  // the fill token itself is never fed
    take(text_cache_, m0, lm_input_);
  }
  set_floor();
  ready_ = true;
}

void LmSession::set_floor() {
  floor_ = static_cast<int64_t>(tokens_.size());
  committed_ = std::max(committed_, floor_);
}

void LmSession::go_final() {
  // As the official code: whatever lm_input holds (after a fill, the input already fed
  // at that step) + the remaining text + task_id.
  lm_input_.insert(lm_input_.end(), text_cache_.begin(), text_cache_.end());
  text_cache_.clear();
  lm_input_.push_back({LmInputKind::TaskId, 0});
  lm_input_.insert(lm_input_.end(), prompt_speech_.begin(), prompt_speech_.end());
  prompt_speech_.clear();
  phase_ = Phase::Free;
  set_floor();
  ready_ = true;
}

std::optional<int32_t> LmSession::emit(int32_t token) {
  tokens_.push_back(token);
  lm_input_.assign(1, {LmInputKind::Speech, token});
  const auto n = static_cast<int64_t>(tokens_.size());
  committed_ = monitor_.enabled() ? std::max(committed_, n - opt_.guard.lookahead) : n;
  ready_ = true;
  return token;
}

int64_t LmSession::committed_tokens() const {
  return finished() ? static_cast<int64_t>(tokens_.size()) : committed_;
}

int32_t LmSession::pick(std::span<const float> logp, std::span<const int32_t> banned, bool& masked,
                        bool& babble) {
  masked = babble = false;
  if (!monitor_.enabled()) return sampler_.sample(logp, banned, history_);
  TokenStats stats;
  int32_t top = sampler_.sample(logp, banned, history_, &stats);
  babble = monitor_.observe_entropy(stats.entropy);
  if (!opt_.guard.mask || top >= limits_.vocab.speech_tokens) return top;
  const auto forbidden = monitor_.forbidden_next(tokens_);
  const auto hit = std::find_if(forbidden.begin(), forbidden.end(),
                                [&](const QualityMonitor::Forbidden& f) { return f.id == top; });
  if (hit == forbidden.end()) return top;
  monitor_.report().count(hit->by);
  ++monitor_.report().masked;
  std::vector<int32_t> more(banned.begin(), banned.end());
  for (const auto& f : forbidden) more.push_back(f.id);
  masked = true;
  return sampler_.resample(logp, more);
}

bool LmSession::after_emit(bool masked, bool babble) {
  if (!monitor_.enabled()) return false;
  const QualityGuardOptions& g = opt_.guard;
  const auto n = static_cast<int64_t>(tokens_.size());
  bool due = masked && monitor_.note_mask(n - 1);
  if (babble) {
    monitor_.report().count(QualityDetector::Babble);
    due = true;
  }
  if (!due || !g.rollback) return false;
  QualityReport& r = monitor_.report();
  if (r.rollbacks < g.max_rollbacks) return roll_back(n - g.lookahead, false);
  if (r.regenerations < g.max_regenerations) return roll_back(0, true);
  return false;
}

bool LmSession::roll_back(int64_t keep, bool regenerate) {
  keep = std::max({keep, committed_, floor_});
  const auto n = static_cast<int64_t>(tokens_.size());
  if (keep >= n) return false;
  // Token `keep` was sampled from the logits at the last input fed before it: drop what
  // came after that input, and feed it again.
  const Mark m = marks_[static_cast<size_t>(keep)];
  const LmInput last = fed_[static_cast<size_t>(m.fed - 1)];
  fed_.resize(static_cast<size_t>(m.fed - 1));
  history_.resize(static_cast<size_t>(m.history));
  tokens_.resize(static_cast<size_t>(keep));
  marks_.resize(static_cast<size_t>(keep));
  lm_input_.assign(1, last);
  ready_ = true;
  monitor_.forget(n - keep);
  QualityReport& r = monitor_.report();
  (regenerate ? r.regenerations : r.rollbacks) += 1;
  r.rolled_back_tokens += n - keep;
  // A new seed for each retry, fixed by the request's seed (reproducible).
  const uint64_t retry = static_cast<uint64_t>(r.rollbacks + r.regenerations);
  sampler_.restart(opt_.sampling.seed + retry * 0x9E3779B97F4A7C15ull, opt_.guard.tighten);
  return true;
}

double LmSession::band_high() const {
  const double official = opt_.max_token_text_ratio;
  if (!monitor_.enabled() || !opt_.guard.end_on_ratio || prompt_ratio_ <= 0) return official;
  return std::clamp(prompt_ratio_ * opt_.guard.ratio_slack, opt_.min_token_text_ratio, official);
}

double LmSession::band_low() const {
  const double official = opt_.min_token_text_ratio;
  if (!monitor_.enabled() || !opt_.guard.end_on_ratio || prompt_ratio_ <= 0) return official;
  return std::clamp(prompt_ratio_ / opt_.guard.ratio_slack, official, band_high());
}

QualityReport LmSession::quality_report() const {
  QualityReport r = monitor_.report();
  r.tokens = static_cast<int64_t>(tokens_.size());
  r.text_tokens = text_len_;
  r.longest_run = longest_run(tokens_);
  return r;
}

void LmSession::evict() {
  replay_.insert(replay_.end(), fed_.begin(), fed_.end());
  fed_.clear();
  kv_seq = 0;
  ++evictions_;
}

void LmSession::check_logp(std::span<const float> logp) {
  if (!ready_ || finished()) cosy::fail("lm session: advance without a pending step");
  if (static_cast<int64_t>(logp.size()) != limits_.vocab.size())
    cosy::fail("lm session: ", logp.size(), " log-probs, expected ", limits_.vocab.size());
  // NaN or Inf in the logits (a precision overflow): nothing sampled from them is speech.
  if (!all_finite(logp)) {
    monitor_.report().count(QualityDetector::NonFinite);
    cosy::fail("the speech LM produced non-finite logits (NaN or Inf) at step ", steps_ + 1,
               ": its numerics overflowed (try another weight format)");
  }
}

LmStepRule LmSession::next_rule() const {
  const SpeechVocab v = limits_.vocab;
  LmStepRule rule;
  if (phase_ == Phase::Interleave) {
    if (next_fill_ >= 0 && static_cast<int64_t>(history_.size()) == next_fill_) {
      rule.forced = v.fill();
    } else {
      rule.banned = v.specials_except(v.fill());
    }
    return rule;
  }
  // Free decoding: unistream, or bistream after the text ended.
  // Python's int() of the products, as the official min_len / max_len.
  const auto min_len =
      static_cast<int64_t>(static_cast<double>(text_len_) * opt_.min_token_text_ratio);
  if (forced_length() > 0) {
    rule.banned = v.specials_except();
  } else if (opt_.bistream) {
    rule.banned = v.specials_except(v.eos());
  } else if (steps_ < min_len) {
    rule.banned = {opt_.corrected_eos_guard ? v.eos() : v.official_min_length_mask()};
  } else if (static_cast<double>(tokens_.size()) < band_low() * static_cast<double>(text_len_)) {
    rule.banned = {v.eos()};  // the guard's band: the family's EOS
  }
  return rule;
}

std::vector<int32_t> LmSession::guard_forbidden() const {
  std::vector<int32_t> ids;
  if (!monitor_.enabled() || !opt_.guard.mask) return ids;
  for (const auto& f : monitor_.forbidden_next(tokens_)) ids.push_back(f.id);
  return ids;
}

void LmSession::note_beam_choice(std::span<const float> logp, std::span<const int32_t> banned) {
  if (!monitor_.enabled() || !opt_.guard.mask) return;
  // What this hypothesis would have picked alone: if the guard forbids it, it acted here.
  int32_t best = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(logp.size()); ++id) {
    if (std::find(banned.begin(), banned.end(), id) != banned.end()) continue;
    if (best < 0 || logp[static_cast<size_t>(id)] > logp[static_cast<size_t>(best)]) best = id;
  }
  if (best < 0 || best >= limits_.vocab.speech_tokens) return;
  for (const auto& f : monitor_.forbidden_next(tokens_)) {
    if (f.id != best) continue;
    monitor_.report().count(f.by);
    ++monitor_.report().masked;
    return;
  }
}

std::optional<int32_t> LmSession::advance(std::span<const float> logp,
                                          std::optional<int32_t> chosen) {
  check_logp(logp);
  if (opt_.keep_logp) last_logp_.assign(logp.begin(), logp.end());
  const LmStepRule rule = next_rule();
  bool masked = false, babble = false;
  int32_t top = 0;
  if (rule.forced) {
    top = *rule.forced;
  } else if (chosen) {
    if (std::find(rule.banned.begin(), rule.banned.end(), *chosen) != rule.banned.end())
      cosy::fail("lm session: id ", *chosen, " is not allowed at this step");
    note_beam_choice(logp, rule.banned);
    top = *chosen;
  } else {
    top = pick(logp, rule.banned, masked, babble);
  }
  fed_.insert(fed_.end(), replay_.begin(), replay_.end());
  fed_.insert(fed_.end(), lm_input_.begin(), lm_input_.end());
  replay_.clear();
  ++steps_;
  ready_ = false;
  const SpeechVocab v = limits_.vocab;
  const Mark mark{static_cast<int64_t>(fed_.size()), static_cast<int64_t>(history_.size())};

  if (phase_ == Phase::Interleave) {
    if (top == v.fill())
      next_fill_ = static_cast<int64_t>(history_.size()) + limits_.mix_speech + 1;
    history_.push_back(top);
    if (top == v.fill()) {
      set_floor();
      schedule();
      return std::nullopt;
    }
    marks_.push_back(mark);
    auto out = emit(top);
    if (after_emit(masked, babble)) return std::nullopt;  // rolled back
    return out;
  }

  history_.push_back(top);
  if (top >= v.speech_tokens) {
    finish_ = LmFinish::Eos;
    return std::nullopt;
  }
  marks_.push_back(mark);
  auto out = emit(top);
  if (after_emit(masked, babble)) return std::nullopt;  // rolled back
  const int64_t forced = forced_length();
  const auto official_max =
      static_cast<int64_t>(static_cast<double>(text_len_) * opt_.max_token_text_ratio);
  const auto max_len = forced > 0 ? forced : official_max;
  const auto band_max = static_cast<int64_t>(static_cast<double>(text_len_) * band_high());
  if (static_cast<int64_t>(tokens_.size()) >= max_len) {
    finish_ = LmFinish::MaxLength;
    ready_ = false;
  } else if (forced == 0 && band_max < official_max &&
             static_cast<int64_t>(tokens_.size()) >= band_max) {
    monitor_.report().count(QualityDetector::Ratio);
    ++monitor_.report().ended;
    finish_ = LmFinish::MaxLength;
    ready_ = false;
  }
  return out;
}

int64_t LmSession::forced_length() const {
  if (opt_.fixed_tokens > 0) return opt_.fixed_tokens;
  if (opt_.forced_tokens_per_text_token > 0) {
    return std::max<int64_t>(
        1, std::llround(opt_.forced_tokens_per_text_token * static_cast<double>(text_len_)));
  }
  return 0;
}

void LmSession::cancel() {
  if (finished()) return;
  finish_ = LmFinish::Cancelled;
  ready_ = false;
}

void LmSession::fail(std::string message) {
  if (finished()) return;
  finish_ = LmFinish::Error;
  error_ = std::move(message);
  ready_ = false;
}

}  // namespace cosy
