// One segment's speech-LM decoding, as the runner steps it: one sampled hypothesis (an
// LmSession, the official decoding), or a beam search over several.
//
// Beam search keeps the num_beams hypotheses of highest summed log-probability. Each step
// the runner feeds every live hypothesis (one row each, batched with other streams); the
// decoder then extends each by its best 2×num_beams allowed ids, keeps the best num_beams
// continuations, and says which hypothesis each one continues: the runner gives the first
// continuation of a hypothesis its KV sequence and forks that sequence (shared full blocks)
// for the others, and releases the ones nothing continues. A continuation that stops (EOS
// among the best num_beams, or a length limit) is set aside as finished. The search ends
// when num_beams are finished and none still live can beat the worst of them at its
// current length (scores divided by length^length_penalty); the best finished one is the
// result.
//
// Streaming: committed_tokens() is the prefix that every live and finished hypothesis
// shares, so the flow never gets a token that a later step could take back.
//
// The hypotheses advance in lockstep. Bistream: a fill token comes only at its official
// position (the sampler may also draw one early; a beam may not, so that every
// hypothesis asks for text at the same step). The quality guard's masks become bans on the
// candidates; it never rolls a hypothesis back (the search already keeps alternatives).
// Beam search is deterministic: the sampling settings do not apply.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/lm_session.h"

namespace cosy {

struct BeamSearchOptions {
  int64_t num_beams = 1;        // 1: sample (the official decoding)
  double length_penalty = 1.0;  // finished scores are divided by length^this
  static constexpr int64_t kMaxBeams = 16;
  void validate() const;
};

class LmDecoder {
 public:
  LmDecoder(const LmSessionLimits& limits, LmSessionOptions options,
            const BeamSearchOptions& beams = {});

  bool beam_search() const { return beams_.num_beams > 1; }
  int64_t beam_width() const { return beams_.num_beams; }
  void push_text(std::span<const int32_t> ids);
  void end_text();

  bool ready() const;
  bool waiting_for_text() const {
    return !finished() && !live_.empty() && live_.front()->waiting_for_text();
  }
  bool finished() const { return finish_reason() != LmFinish::None; }
  LmFinish finish_reason() const {
    return beam_search() ? finish_ : live_.front()->finish_reason();
  }
  const std::string& error() const { return beam_search() ? error_ : live_.front()->error(); }
  void cancel();
  void fail(std::string message);

  // Sampling: the session's tokens. Beam search: the prefix every hypothesis shares, and
  // once finished, the best hypothesis.
  const std::vector<int32_t>& tokens() const;
  // Tokens that no later step changes (the flow takes only these).
  int64_t committed_tokens() const;
  QualityReport quality_report() const;

  // For the runner: the hypotheses to feed this step (one row each, in this order).
  std::span<const std::unique_ptr<LmSession>> hypotheses() const { return live_; }
  // After the runner fed every hypothesis: its log-probabilities, in the order of
  // hypotheses(). Returns, for each hypothesis live now, the index of the one it continues
  // (whose KV rows it holds). A hypothesis that nothing continues is gone: its KV sequence
  // is the runner's to release.
  std::vector<int> advance(std::span<const std::span<const float>> logps);

 private:
  struct Candidate {
    double score;
    int parent;
    int32_t token;
    bool stop;  // ends the hypothesis
  };
  struct Finished {
    std::unique_ptr<LmSession> session;
    double score;  // summed log-probability
    double normalized;
  };
  double normalized(double score, int64_t tokens) const;
  void candidates_of(int parent, std::span<const float> logp);
  // Makes the picked continuations (copying a parent picked more than once) and advances
  // each by its id; returns the parents of those that go on.
  std::vector<int> extend(std::span<const Candidate> picks,
                          std::span<const std::span<const float>> logps);
  void add_finished(std::unique_ptr<LmSession> session, double score);
  bool search_done() const;
  void conclude();
  void update_committed();

  BeamSearchOptions beams_;
  SpeechVocab vocab_;
  std::vector<std::unique_ptr<LmSession>> live_;
  std::vector<double> scores_;  // per live hypothesis
  std::vector<Finished> finished_;
  std::vector<Candidate> candidates_;
  std::vector<int32_t> order_;  // scratch: ids by falling log-probability
  std::vector<int32_t> committed_;
  LmFinish finish_ = LmFinish::None;
  std::string error_;
  QualityReport report_;  // the best hypothesis's, once finished
};

}  // namespace cosy
