#include "model/flow/hop_schedule.h"

#include <algorithm>

#include "core/error.h"
#include "model/flow/flow_stream.h"

namespace cosy {

HopSchedule::HopSchedule(const FlowStreamOptions& options, int64_t prompt_tokens, int64_t lookahead)
    : max_hop_(options.max_hop),
      scale_(options.hop_scale),
      lookahead_(lookahead),
      prompt_tokens_(prompt_tokens),
      incremental_(options.incremental),
      final_full_attention_(options.final_full_attention),
      hop_(options.first_hop) {
  options.validate();
  // ceil(P / hop) * hop - P: the official pad aligns prompt + first chunk to the hop (the
  // encoder chunk, when the first hop is the chunk size).
  prompt_pad_ = (prompt_tokens + hop_ - 1) / hop_ * hop_ - prompt_tokens;
}

void HopSchedule::push(std::span<const int32_t> tokens) {
  if (finished_) fail("flow stream: tokens pushed after finish()");
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

void HopSchedule::finish() { finished_ = true; }

int64_t HopSchedule::this_hop() const { return offset_ == 0 ? hop_ + prompt_pad_ : hop_; }

bool HopSchedule::ready() const {
  if (done_) return false;
  const auto have = static_cast<int64_t>(tokens_.size()) - offset_;
  // At the end, the final chunk may have no frames (e.g. a stream with no tokens).
  return have >= this_hop() + lookahead_ || finished_;
}

bool HopSchedule::next_is_final() const {
  const auto have = static_cast<int64_t>(tokens_.size()) - offset_;
  return finished_ && have < this_hop() + lookahead_;
}

int64_t HopSchedule::tokens_missing() const {
  if (done_ || finished_) return 0;
  const auto have = static_cast<int64_t>(tokens_.size()) - offset_;
  return std::max<int64_t>(0, this_hop() + lookahead_ - have);
}

int64_t HopSchedule::next_chunk_tokens() const {
  if (done_) return 0;
  const auto have = static_cast<int64_t>(tokens_.size()) - offset_;
  return finished_ ? have : this_hop();
}

std::span<const int32_t> HopSchedule::next_call_tokens() const {
  if (next_is_final()) return tokens_;
  return std::span<const int32_t>(tokens_).first(
      static_cast<size_t>(offset_ + this_hop() + lookahead_));
}

FlowCall HopSchedule::next_call(int64_t committed) const {
  FlowCall c;
  if (next_is_final()) {
    c.tokens = prompt_tokens_ + static_cast<int64_t>(tokens_.size());
    c.streaming = !final_full_attention_;
  } else {
    c.tokens = prompt_tokens_ + offset_ + this_hop();
    c.streaming = true;
  }
  c.with_state = incremental_ && c.streaming;
  c.past = c.with_state ? committed : 0;
  return c;
}

void HopSchedule::advance() {
  if (next_is_final()) {
    offset_ = static_cast<int64_t>(tokens_.size());
    done_ = true;
  } else {
    offset_ += this_hop();
    hop_ = std::min(max_hop_, hop_ * scale_);
  }
}

}  // namespace cosy
