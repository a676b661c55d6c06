#include "model/dit/dit_flow.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/flow/flow.h"  // cfm_noise_table, FlowModel::cosine_t_span
#include "model/flow/prompt_state.h"

namespace cosy {
namespace {

constexpr int64_t kEulerSteps = 10;

const FlowConfig& dit_flow(const FlowConfig& c) {
  if (c.family != ModelFamily::CosyVoice3)
    fail("dit flow: ", c.class_name, " is not CosyVoice3's CausalMaskedDiffWithDiT");
  c.validate();
  return c;
}

}  // namespace

DitFlowModel::DitFlowModel(Backend& backend, const FlowConfig& config, const StateDict& sd,
                           WeightFormat format)
    : backend_(backend),
      config_(dit_flow(config)),
      estimator_(backend, config.decoder.dit, sd, format) {
  const FlowConfig& c = config_;
  const Tensor& table = sd.at("input_embedding.weight");
  if (table.rank() != 2 || table.dim(0) != c.vocab_size || table.dim(1) != c.input_size)
    fail(sd.label, ": input_embedding is not [", c.vocab_size, ", ", c.input_size, "]");
  embedding_ = ConstArray<float>::upload(backend, table.to_float_vector());
  const WeightLoader wl(backend, sd, format);
  const PreLookaheadConfig& la = c.pre_lookahead;
  la_conv1_ = load_conv(wl, "pre_lookahead_layer.conv1", la.channels, la.in_channels,
                        la.pre_lookahead_len + 1, 0, 0);
  // Causal over conv1's output: two zero frames on the left.
  la_conv2_ = load_conv(wl, "pre_lookahead_layer.conv2", la.in_channels, la.channels, 3, 2, 0);
  spk_affine_ = load_linear(WeightLoader(backend, sd, WeightFormat::F32), "spk_embed_affine_layer",
                            c.output_size, c.spk_embed_dim);
  noise_ = cfm_noise_table(backend);
}

DitFlowModel::~DitFlowModel() = default;

void DitFlowModel::check(const DitFlowRequest& r) const {
  const FlowConfig& c = config_;
  const int64_t la = c.pre_lookahead_len, bins = mel_bins();
  for (auto ids : {r.prompt_tokens, r.tokens}) {
    for (const int32_t t : ids)
      if (t < 0 || t >= c.vocab_size)
        fail("dit flow: speech token ", t, " is outside [0, ", c.vocab_size, ")");
  }
  if (!r.finalize && static_cast<int64_t>(r.tokens.size()) <= la)
    fail("dit flow: a non-final call needs more than its ", la, " look-ahead tokens");
  if (r.tokens.empty()) fail("dit flow: no tokens");
  if (static_cast<int64_t>(r.prompt_feat.size()) !=
      2 * static_cast<int64_t>(r.prompt_tokens.size()) * bins)
    fail("dit flow: the prompt mel must have 2 frames per prompt token (", r.prompt_feat.size(),
         " values for ", r.prompt_tokens.size(), " tokens)");
  if (static_cast<int64_t>(r.embedding.size()) != c.spk_embed_dim)
    fail("dit flow: the speaker embedding has ", r.embedding.size(), " values, expected ",
         c.spk_embed_dim);
  const auto frames = 2 * static_cast<int64_t>(r.prompt_tokens.size() + r.tokens.size());
  if (frames > static_cast<int64_t>(noise_.size()) / bins)
    fail("dit flow: ", frames, " frames exceed the noise table's ",
         static_cast<int64_t>(noise_.size()) / bins);
  if (r.mel == nullptr) fail("dit flow: no output");
  if (r.state != nullptr && (!r.streaming || c.decoder.dit.static_chunk_size <= 0))
    fail("dit flow: incremental state is for chunk-masked (streaming) calls");
}

void DitFlowModel::infer(std::span<DitFlowRequest> batch) const {
  for (const auto& r : batch) check(r);
  if (batch.empty()) return;
  const FlowConfig& c = config_;
  const size_t n = batch.size();
  const int64_t la = c.pre_lookahead_len, din = c.input_size, bins = mel_bins();
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);

  // Tokens → embeddings; conv1 sees `la` more rows: the look-ahead tokens' embeddings, or
  // zeros at the end. The residual is the embeddings of the frames this call makes.
  Batch emb(n), padded(n), y1, h(n);
  std::vector<int64_t> body(n);
  for (size_t i = 0; i < n; ++i) {
    const DitFlowRequest& r = batch[i];
    std::vector<int32_t> ids(r.prompt_tokens.begin(), r.prompt_tokens.end());
    ids.insert(ids.end(), r.tokens.begin(), r.tokens.end());
    const auto all = static_cast<int64_t>(ids.size());
    body[i] = r.finalize ? all : all - la;
    emb[i].resize(e, all, din);
    e.k.gather_rows(e.s, embedding_.data(), din, ids.data(), all, emb[i].ptr());
    padded[i].resize(e, body[i] + la, din);
    e.k.pad_rows(e.s, emb[i].ptr(), all, din, padded[i].ptr(), 0, body[i] + la - all,
                 PadMode::Zero);
    h[i].resize(e, body[i], din);
    e.k.copy_2d(e.s, emb[i].ptr(), din, h[i].ptr(), din, body[i], din);
    if (DitFlowTrace* tr = r.trace) {
      const std::vector<float> host = download(e, emb[i]);
      tr->la_in.assign(host.begin(), host.begin() + body[i] * din);
      tr->la_context.assign(host.begin() + body[i] * din, host.end());
    }
  }
  la_conv1_.run(e, padded, y1);
  la_conv2_.run(e, y1, h, {ActivationKind::LeakyRelu, 0.01f}, /*accumulate=*/true);

  // Frames [first, end) run: an incremental call starts at its state's committed frames and
  // keeps those before the last chunk boundary (their outputs are final).
  const int64_t ratio = c.token_mel_ratio, chunk = c.decoder.dit.static_chunk_size;
  std::vector<int64_t> first(n, 0), commit(n, 0);
  for (size_t i = 0; i < n; ++i) {
    FlowStreamState* st = batch[i].state;
    if (st == nullptr) continue;
    first[i] = st->encoder.committed * ratio;
    commit[i] = ratio * body[i] / chunk * chunk;
    if (first[i] > commit[i])
      fail("dit flow: the stream's state is past this call's frames (", first[i], " > ", commit[i],
           ")");
    if (st->estimator.empty()) {
      st->estimator.resize(static_cast<size_t>(2 * kEulerSteps));
      for (auto& es : st->estimator) es.half_kv = st->half_kv;
    }
  }

  // mu: every frame twice. The speaker vector, cond (the prompt mel, then zeros) and the
  // fixed noise.
  Batch mu(n), xvec(n), spks, cond(n), x(n);
  for (size_t i = 0; i < n; ++i) {
    const DitFlowRequest& r = batch[i];
    const int64_t T = ratio * body[i] - first[i];
    std::vector<int32_t> twice(static_cast<size_t>(T));
    for (int64_t f = 0; f < T; ++f)
      twice[static_cast<size_t>(f)] = static_cast<int32_t>((first[i] + f) / ratio);
    mu[i].resize(e, T, din);
    e.k.gather_rows(e.s, h[i].ptr(), din, twice.data(), T, mu[i].ptr());
    double ss = 0;
    for (const float v : r.embedding) ss += static_cast<double>(v) * v;
    const float norm = std::max(static_cast<float>(std::sqrt(ss)), 1e-12f);
    std::vector<float> unit(r.embedding.size());
    for (size_t k = 0; k < unit.size(); ++k) unit[k] = r.embedding[k] / norm;
    upload(e, unit, 1, c.spk_embed_dim, xvec[i]);
    const int64_t prompt_frames = static_cast<int64_t>(r.prompt_feat.size()) / bins;
    const int64_t from_prompt = std::clamp<int64_t>(prompt_frames - first[i], 0, T);
    cond[i].resize(e, T, bins);
    if (from_prompt > 0) {
      e.b.copy(e.s, cond[i].ptr(), r.prompt_feat.data() + first[i] * bins,
               static_cast<size_t>(from_prompt * bins) * sizeof(float));
    }
    e.k.fill_2d(e.s, cond[i].row(from_prompt), bins, T - from_prompt, bins, 0.0f);
    x[i].resize(e, T, bins);
    e.k.copy_2d(e.s, noise_.data() + first[i] * bins, bins, x[i].ptr(), bins, T, bins);
  }
  spk_affine_.run(e, xvec, spks);
  for (size_t i = 0; i < n; ++i) {
    if (DitFlowTrace* tr = batch[i].trace) {
      tr->la_out = download(e, h[i]);
      tr->mu = download(e, mu[i]);
      tr->spks = download(e, spks[i]);
      tr->cond = download(e, cond[i]);
      tr->noise = download(e, x[i]);
      tr->est_t.clear();
    }
  }

  // Euler steps; the conditional and CFG halves of every request in one estimator call.
  const std::vector<float> t_span = FlowModel::cosine_t_span(kEulerSteps);
  const auto cfg = static_cast<float>(c.decoder.inference_cfg_rate);
  float t = t_span[0], dt = t_span[1] - t_span[0];
  std::vector<DitInput> in(2 * n);
  std::vector<DitTrace*> traces(2 * n, nullptr);
  Batch v;
  for (int64_t step = 1; step <= kEulerSteps; ++step) {
    for (size_t i = 0; i < n; ++i) {
      const bool chunked = batch[i].streaming;
      in[2 * i] = {&x[i], &mu[i], &cond[i], &spks[i], t, chunked};
      in[2 * i + 1] = {&x[i], nullptr, nullptr, nullptr, t, chunked};
      if (FlowStreamState* st = batch[i].state) {
        // Each step and CFG half sees other inputs, so each keeps its own keys.
        for (int64_t half = 0; half < 2; ++half) {
          in[2 * i + static_cast<size_t>(half)].state =
              &st->estimator[static_cast<size_t>(2 * (step - 1) + half)];
          in[2 * i + static_cast<size_t>(half)].commit = commit[i];
        }
      }
      DitFlowTrace* tr = batch[i].trace;
      traces[2 * i] = step == 1 && tr != nullptr ? &tr->est0[0] : nullptr;
      traces[2 * i + 1] = step == 1 && tr != nullptr ? &tr->est0[1] : nullptr;
    }
    estimator_.estimate(in, v, traces);
    for (size_t i = 0; i < n; ++i) {
      Act& conditional = v[2 * i];
      Act& uncond = v[2 * i + 1];
      if (DitFlowTrace* tr = batch[i].trace) {
        tr->est_t.push_back(t);
        if (step == 1) {
          tr->est0_out = download(e, conditional);
          const std::vector<float> u = download(e, uncond);
          tr->est0_out.insert(tr->est0_out.end(), u.begin(), u.end());
        }
      }
      // dphi = (1 + cfg) v_cond - cfg v_uncond, then x += dt dphi.
      const auto values = static_cast<int64_t>(x[i].size());
      e.k.axpby(e.s, conditional.ptr(), uncond.ptr(), values, 1.0f + cfg, -cfg);
      e.k.axpby(e.s, uncond.ptr(), x[i].ptr(), values, dt, 1.0f);
    }
    t = t + dt;
    if (step < kEulerSteps) dt = t_span[static_cast<size_t>(step + 1)] - t;
  }

  for (size_t i = 0; i < n; ++i) {
    const DitFlowRequest& r = batch[i];
    std::vector<float> mel = download(e, x[i]);
    const int64_t prompt_frames = static_cast<int64_t>(r.prompt_feat.size()) / bins;
    const int64_t skip = std::clamp<int64_t>(prompt_frames - first[i], 0, x[i].rows);
    r.mel->assign(mel.begin() + skip * bins, mel.end());
    if (r.first_frame != nullptr) *r.first_frame = first[i] + skip - prompt_frames;
    if (r.state != nullptr) r.state->encoder.committed = commit[i] / ratio;
    if (r.trace != nullptr) r.trace->mel_full = std::move(mel);
  }
}

double DitFlowModel::flops(int64_t tokens, int64_t past, bool streaming) const {
  const int64_t ratio = config_.token_mel_ratio;
  const int64_t chunk = streaming ? config_.decoder.dit.static_chunk_size : 0;
  return 2.0 * kEulerSteps * estimator_.flops((tokens - past) * ratio, past * ratio, chunk);
}

FlowStreamState DitFlowModel::prompt_state(std::span<const int32_t> prompt_tokens,
                                           std::span<const float> prompt_feat,
                                           std::span<const float> embedding, bool half_kv) const {
  return compute_prompt_state<DitFlowRequest>(
      *this, backend_, prompt_tokens, prompt_feat, embedding, half_kv,
      config_.decoder.dit.static_chunk_size / config_.token_mel_ratio);
}

FlowStreamState DitFlowModel::copy_state(const FlowStreamState& state) const {
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  FlowStreamState copy = state.clone(e);
  stream->synchronize();
  return copy;
}

}  // namespace cosy
