#include "model/stream_ops.h"

#include <algorithm>

#include "core/error.h"

namespace cosy {

void self_attention(Exec& e, std::span<SelfAttentionIo> seqs, const AttentionArgs& base) {
  // Append every new row to its history first, so the pointers below stay valid.
  for (auto& s : seqs) {
    s.out->resize(e, s.q->rows, s.q->ch);
    if (s.history == nullptr) {
      if (s.start != 0) fail("self-attention: rows after ", s.start, " given without history");
      continue;
    }
    KvHistory& h = *s.history;
    if (h.rows != s.start) {
      fail("self-attention: history holds ", h.rows, " rows but new rows start at ", s.start);
    }
    h.append(e, s.k->ptr(), s.v->ptr(), s.k->rows, static_cast<int64_t>(s.k->ch));
  }
  for (const bool want_chunked : {false, true}) {
    std::vector<AttentionSeq> batch;
    for (auto& s : seqs) {
      if (s.chunked != want_chunked || s.q->rows == 0) continue;
      AttentionSeq a;
      a.q = s.q->ptr();
      a.q_len = s.q->rows;
      a.q_pos0 = s.start;
      a.out = s.out->ptr();
      a.q_rel = s.q_rel != nullptr ? s.q_rel->ptr() : nullptr;
      if (s.history != nullptr) {
        const KvHistory& h = *s.history;
        // Rows before h.first were dropped (a bounded left context): positions count from
        // there. first is a whole number of chunks, so every chunk mask stays the same.
        const int64_t shift = h.first;
        if (shift > 0 && (!want_chunked || shift % base.chunk != 0))
          fail("self-attention: a history without its first ", shift,
               " rows needs chunk masks on whole chunks");
        const int64_t shared_len = std::max<int64_t>(0, h.shared_rows() - shift);
        const auto shared_skip =
            shared_len > 0 ? static_cast<size_t>((shift - h.shared->first) * s.k->ch) : 0;
        a.q_pos0 = s.start - shift;
        a.kv_len = h.rows - shift;
        a.shared_len = shared_len;
        a.kv_half = h.half;
        if (h.half) {
          a.k16 = h.k16.data();
          a.v16 = h.v16.data();
          if (shared_len > 0) {
            a.k16_shared = h.shared->k16.data() + shared_skip;
            a.v16_shared = h.shared->v16.data() + shared_skip;
          }
        } else {
          a.k = h.k.data();
          a.v = h.v.data();
          if (shared_len > 0) {
            a.k_shared = h.shared->k.data() + shared_skip;
            a.v_shared = h.shared->v.data() + shared_skip;
          }
        }
      } else {
        a.k = s.k->ptr();
        a.v = s.v->ptr();
        a.kv_len = s.k->rows;
      }
      batch.push_back(a);
    }
    if (batch.empty()) continue;
    AttentionArgs args = base;
    args.mask = want_chunked ? MaskKind::ChunkCausal : MaskKind::None;
    e.k.attention(e.s, batch, args);
  }
  for (auto& s : seqs) {
    if (s.history == nullptr || s.commit < 0) continue;
    const auto width = static_cast<int64_t>(s.k->ch);
    s.history->truncate(e, s.commit, width);
    // The next call's first query is row `commit`; with a bounded left context it sees
    // nothing before its chunk's left_chunks-th predecessor.
    if (s.chunked && base.left_chunks >= 0 && base.chunk > 0) {
      const int64_t chunk = s.commit / base.chunk;
      s.history->drop_before(e, std::max<int64_t>(0, (chunk - base.left_chunks) * base.chunk),
                             width);
    }
  }
}

void causal_conv(Exec& e, const ConvLayer& conv, std::span<CausalConvIo> seqs, Batch& in,
                 Activation pre, bool accumulate) {
  const int64_t ctx = conv.shape.kernel - 1, ch = conv.shape.in_channels;
  if (conv.shape.pad_left != 0 || conv.shape.pad_right != 0 || conv.shape.stride != 1 ||
      conv.shape.dilation != 1) {
    fail("causal conv: the layer must be unpadded, stride 1, dilation 1");
  }
  // The inputs with their context rows in front; the outputs go into the callers' own
  // buffers.
  in.resize(seqs.size());
  Batch out(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const CausalConvIo& s = seqs[i];
    if (s.x->ch != ch) fail("causal conv: input has ", s.x->ch, " channels, expected ", ch);
    in[i].resize(e, ctx + s.x->rows, ch);
    if (s.tail != nullptr && s.start > 0) {
      if (static_cast<int64_t>(s.tail->size()) != ctx * ch)
        fail("causal conv: the saved tail has ", s.tail->size(), " values, expected ", ctx * ch);
      e.k.copy_2d(e.s, s.tail->data(), ch, in[i].ptr(), ch, ctx, ch);
    } else {
      if (s.start > 0 && s.tail == nullptr) fail("causal conv: rows after 0 given without a tail");
      e.k.fill_2d(e.s, in[i].ptr(), ch, ctx, ch, 0.0f);
    }
    e.k.copy_2d(e.s, s.x->ptr(), ch, in[i].row(ctx), ch, s.x->rows, ch);
  }
  for (size_t i = 0; i < seqs.size(); ++i) out[i] = std::move(*seqs[i].y);
  conv.run(e, in, out, pre, accumulate);
  for (size_t i = 0; i < seqs.size(); ++i) {
    CausalConvIo& s = seqs[i];
    *s.y = std::move(out[i]);
    if (s.tail != nullptr && s.commit >= 0) {
      const int64_t r0 = s.commit - s.start;  // buffer row of absolute row commit - ctx
      if (r0 < 0 || r0 + ctx > in[i].rows) fail("causal conv: commit row outside this call");
      s.tail->resize(e.b, static_cast<size_t>(ctx * ch));
      e.k.copy_2d(e.s, in[i].row(r0), ch, s.tail->data(), ch, ctx, ch);
    }
  }
}

}  // namespace cosy
