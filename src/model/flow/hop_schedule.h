// The official streaming schedule of speech tokens into flow chunks, the same in
// CosyVoice2Model.tts and CosyVoice3Model.tts, for one stream:
//   - a chunk runs once hop + look-ahead tokens are past the emitted ones; the first hop is
//     padded so that the prompt plus the first chunk end on a hop boundary;
//   - the hop grows ×scale up to max_hop after each chunk;
//   - once the tokens end, one final chunk takes the rest (no look-ahead).
// Only the bookkeeping: the flows' streams (FlowStream, DitFlowStream) run the calls. The
// schedule is per stream (the official code grows token_hop_len on the shared model and
// never resets it; here nothing is shared between streams).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cosy {

struct FlowStreamOptions;

// One flow call of a stream: the tokens it sees (prompt included, look-ahead not), those
// served from the stream's state instead of computed, chunk masks or full attention, and
// whether it runs on the stream's state (incremental and chunk-masked). Its work is the
// flow's flops(tokens, past, streaming); a recompute of the same schedule has past = 0.
struct FlowCall {
  int64_t tokens = 0, past = 0;
  bool streaming = false;
  bool with_state = false;
};

class HopSchedule {
 public:
  HopSchedule(const FlowStreamOptions& options, int64_t prompt_tokens, int64_t lookahead);

  void push(std::span<const int32_t> tokens);  // an Error after finish()
  void finish();                               // no more tokens will come

  // A chunk can run now (enough tokens past the emitted ones, or the end reached).
  bool ready() const;
  bool done() const { return done_; }
  bool finished() const { return finished_; }
  // The chunk ready() announces is the final one.
  bool next_is_final() const;
  // Tokens still to come before the next chunk can run (0 when ready or finished).
  int64_t tokens_missing() const;
  int64_t this_hop() const;  // tokens the next non-final chunk emits
  int64_t hop() const { return hop_; }
  int64_t emitted() const { return offset_; }  // tokens whose frames were emitted
  // Tokens left for the final chunk, or the next chunk's hop.
  int64_t next_chunk_tokens() const;
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // The tokens the next call sees: all of them for the final chunk, else up to the hop's
  // end plus the look-ahead.
  std::span<const int32_t> next_call_tokens() const;
  // The next call as a stream whose state has `committed` tokens runs it: the official
  // final chunk has full attention (final_full_attention), every other chunk masks.
  FlowCall next_call(int64_t committed) const;

  // After the next chunk ran (its frames emitted): the offset moves past it and the hop
  // grows; a final chunk ends the stream.
  void advance();

 private:
  int64_t max_hop_, scale_, lookahead_, prompt_tokens_;
  bool incremental_, final_full_attention_;
  std::vector<int32_t> tokens_;
  int64_t offset_ = 0;
  int64_t hop_;
  int64_t prompt_pad_;
  bool finished_ = false;
  bool done_ = false;
};

}  // namespace cosy
