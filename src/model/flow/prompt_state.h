// How a voice's prompt state is computed, for either flow (FlowModel, DitFlowModel): one
// chunk-masked request over the prompt that commits the chunks its own tokens decide, its
// rows then shared by every stream of the voice.
//
// The request's last la + 1 tokens are the prompt's own: one of them makes frames (a
// request must), the rest are its look-ahead. That token's frames get zero cond (the
// request's prompt mel stops before it), so they must lie past the committed chunks, which
// end at a multiple of the chunk below the la-less length. When that length is itself a
// multiple, the request leaves out the prompt's last token: it commits one chunk less, and
// every committed row is exact.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "model/flow/flow_prompt.h"
#include "model/flow/flow_state.h"

namespace cosy {

// `chunk_tokens`: the chunk the flow's state commits at, in tokens.
template <typename Request, typename Model>
FlowStreamState compute_prompt_state(const Model& flow, Backend& backend,
                                     std::span<const int32_t> prompt_tokens,
                                     std::span<const float> prompt_feat,
                                     std::span<const float> embedding, bool half_kv,
                                     int64_t chunk_tokens) {
  const auto& c = flow.config();
  const int64_t la = c.pre_lookahead_len, bins = c.output_size;
  const auto tp = static_cast<int64_t>(prompt_tokens.size());
  check_flow_prompt(c, prompt_tokens, prompt_feat, embedding);
  FlowStreamState state;
  state.half_kv = half_kv;
  const int64_t used = chunk_tokens > 0 && (tp - la) % chunk_tokens == 0 ? tp - 1 : tp;
  if (used <= la + 1 || chunk_tokens <= 0) return state;
  const int64_t head = used - la - 1;
  Request r;
  r.prompt_tokens = prompt_tokens.first(static_cast<size_t>(head));
  r.tokens = prompt_tokens.subspan(static_cast<size_t>(head), static_cast<size_t>(la + 1));
  r.prompt_feat = prompt_feat.first(static_cast<size_t>(head * c.token_mel_ratio * bins));
  r.embedding = embedding;
  r.streaming = true;
  r.finalize = false;
  std::vector<float> mel;
  r.mel = &mel;
  r.state = &state;
  flow.infer({&r, 1});
  auto stream = backend.create_stream();
  Exec e(backend, *stream);
  state.share(e);  // the voice's streams read these rows, never copy them
  stream->synchronize();
  return state;
}

// A stream's start from a voice's prompt state: an Error when the state does not fit the
// stream (it commits more than the prompt decides, or its precision differs).
inline void check_prompt_state(const FlowStreamState& state, int64_t prompt_tokens,
                               int64_t lookahead, bool half_state) {
  if (state.committed_tokens() > prompt_tokens - lookahead)
    cosy::fail("flow stream: the prompt state commits more than the prompt decides");
  if (state.half_kv != half_state)
    cosy::fail("flow stream: the prompt state's precision differs from the stream's half_state");
}

}  // namespace cosy
