#include "model/flow/flow.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/tensor.h"
#include "core/torch_generator.h"
#include "model/flow/flow_prompt.h"
#include "model/flow/prompt_state.h"

namespace cosy {

namespace {

// CausalConditionalCFM draws its noise once at construction: torch.manual_seed(0);
// randn([1, 80, 50 * 300]), i.e. 300 s of 50 Hz frames.
constexpr int64_t kNoiseChannels = CfmConfig::kNoiseChannels;
constexpr int64_t kNoiseFrames = CfmConfig::kNoiseFrames;

// This flow is CosyVoice2's (conformer encoder, UNet estimator).
const FlowConfig& conformer_flow(const FlowConfig& c) {
  if (c.family != ModelFamily::CosyVoice2) {
    fail("flow: ", c.class_name,
         " is CosyVoice3's DiT flow; FlowModel is CosyVoice2's (model/dit/dit_flow.h is "
         "CosyVoice3's)");
  }
  return c;
}

}  // namespace

FlowModel::FlowModel(Backend& backend, const FlowConfig& config, const StateDict& sd,
                     WeightFormat format)
    : backend_(backend),
      config_(conformer_flow(config)),
      encoder_(backend, config, sd, format),
      estimator_(backend, config.decoder, config.output_size, sd, format) {
  if (config_.output_size != kNoiseChannels) {
    fail("flow: ", config_.output_size, " mel bins; the official noise table has ", kNoiseChannels);
  }
  spk_affine_ = load_linear(WeightLoader(backend, sd, WeightFormat::F32), "spk_embed_affine_layer",
                            config_.output_size, config_.spk_embed_dim);
  noise_ = cfm_noise_table(backend);
}

FlowModel::~FlowModel() = default;

int64_t FlowModel::max_frames() const { return kNoiseFrames; }

ConstArray<float> cfm_noise_table(Backend& backend) {
  std::vector<float> noise(static_cast<size_t>(kNoiseChannels * kNoiseFrames));
  TorchGenerator gen(0);
  gen.randn(noise);
  return ConstArray<float>::upload(backend, transpose_2d(noise, kNoiseChannels, kNoiseFrames));
}

std::vector<float> FlowModel::cosine_t_span(int64_t steps) {
  // torch.linspace(0, 1, steps + 1) fills the first half forwards from 0 and the second
  // half backwards from 1; then 1 - cos(t · 0.5 · π), all in float32.
  const int64_t n = steps + 1;
  const float step = 1.0f / static_cast<float>(steps);
  std::vector<float> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float lin =
        i < n / 2 ? step * static_cast<float>(i) : 1.0f - step * static_cast<float>(n - 1 - i);
    const float arg = (lin * 0.5f) * std::numbers::pi_v<float>;
    t[static_cast<size_t>(i)] = 1.0f - static_cast<float>(std::cos(static_cast<double>(arg)));
  }
  return t;
}

void FlowModel::check_prompt(std::span<const int32_t> prompt_tokens,
                             std::span<const float> prompt_feat,
                             std::span<const float> embedding) const {
  check_flow_prompt(config_, prompt_tokens, prompt_feat, embedding);
}

void FlowModel::check(const FlowRequest& r) const {
  const int64_t la = config_.pre_lookahead_len;
  const auto tp = static_cast<int64_t>(r.prompt_tokens.size());
  check_prompt(r.prompt_tokens, r.prompt_feat, r.embedding);
  const auto tokens = static_cast<int64_t>(r.tokens.size());
  const int64_t produced = r.finalize ? tokens : tokens - la;
  if (produced <= 0) {
    fail("flow: ", tokens, " tokens produce no frames",
         r.finalize ? "" : " (the last look-ahead tokens are context only)");
  }
  const int64_t frames = (tp + produced) * config_.token_mel_ratio;
  if (frames > kNoiseFrames) {
    fail("flow: ", frames, " mel frames (prompt included) exceed the ", kNoiseFrames,
         "-frame noise table the model was trained with (", kNoiseFrames / 50, " s)");
  }
  if (r.mel == nullptr) fail("flow: no output buffer given");
  if (r.state != nullptr && !r.streaming)
    fail("flow: incremental state is for streaming (chunk-causal) requests only");
}

void FlowModel::infer(std::span<FlowRequest> batch) const {
  for (const auto& r : batch) check(r);
  if (batch.empty()) return;
  const size_t n = batch.size();
  const int64_t bins = mel_bins(), la = config_.pre_lookahead_len;

  // Token streams (prompt ++ tokens) and the encoder inputs over them.
  std::vector<std::vector<int32_t>> all(n);
  std::vector<FlowEncoderInput> enc_in(n);
  std::vector<FlowEncoderTrace*> enc_traces(n, nullptr);
  bool any_trace = false;
  for (size_t i = 0; i < n; ++i) {
    const FlowRequest& r = batch[i];
    all[i].assign(r.prompt_tokens.begin(), r.prompt_tokens.end());
    all[i].insert(all[i].end(), r.tokens.begin(), r.tokens.end());
    const std::span<const int32_t> whole(all[i]);
    if (r.finalize) {
      enc_in[i].tokens = whole;
    } else {
      enc_in[i].tokens = whole.first(whole.size() - static_cast<size_t>(la));
      enc_in[i].context = whole.last(static_cast<size_t>(la));
    }
    enc_in[i].chunked = r.streaming;
    if (r.state != nullptr) enc_in[i].state = &r.state->encoder;
    if (r.trace != nullptr) {
      enc_traces[i] = &r.trace->encoder;
      any_trace = true;
    }
  }
  // Frames before first[i] are committed in the request's state and not recomputed.
  std::vector<int64_t> first(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].state != nullptr) {
      first[i] = batch[i].state->encoder.committed * config_.token_mel_ratio;
      if (batch[i].state->estimator.empty()) {
        batch[i].state->estimator.resize(static_cast<size_t>(2 * kSteps));
        for (auto& es : batch[i].state->estimator) es.half_kv = batch[i].state->half_kv;
      }
    }
  }
  Batch mu;
  encoder_.encode(
      enc_in, mu,
      any_trace ? std::span<FlowEncoderTrace*>(enc_traces) : std::span<FlowEncoderTrace*>());

  // Speaker conditioning: L2-normalised x-vector → affine.
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  Batch xvec(n), spks;
  for (size_t i = 0; i < n; ++i) {
    const auto& emb = batch[i].embedding;
    double ss = 0;
    for (const float v : emb) ss += static_cast<double>(v) * v;
    const float norm = std::max(static_cast<float>(std::sqrt(ss)), 1e-12f);
    std::vector<float> unit(emb.size());
    for (size_t c = 0; c < emb.size(); ++c) unit[c] = emb[c] / norm;
    upload(e, unit, 1, config_.spk_embed_dim, xvec[i]);
  }
  spk_affine_.run(e, xvec, spks);

  // cond (the prompt mel, then zeros) and the initial noise, per request.
  // Rows are frames first[i] .. first[i] + T; commit[i] is where the state stops keeping.
  Batch cond(n), x(n);
  std::vector<int64_t> commit(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t T = mu[i].rows, f0 = first[i];
    const auto prompt_frames = static_cast<int64_t>(batch[i].prompt_feat.size()) / bins;
    if (batch[i].state != nullptr)
      commit[i] = batch[i].state->encoder.committed * config_.token_mel_ratio;
    const int64_t from_prompt = std::clamp<int64_t>(prompt_frames - f0, 0, T);
    cond[i].resize(e, T, bins);
    if (from_prompt > 0) {
      e.b.copy(e.s, cond[i].ptr(), batch[i].prompt_feat.data() + f0 * bins,
               static_cast<size_t>(from_prompt * bins) * sizeof(float));
    }
    e.k.fill_2d(e.s, cond[i].row(from_prompt), bins, T - from_prompt, bins, 0.0f);
    x[i].resize(e, T, bins);
    e.k.copy_2d(e.s, noise_.data() + f0 * bins, bins, x[i].ptr(), bins, T, bins);
    if (FlowTrace* tr = batch[i].trace) {
      tr->mu = download(e, mu[i]);
      tr->spks = download(e, spks[i]);
      tr->cond = download(e, cond[i]);
      tr->noise = download(e, x[i]);
      tr->est_t.clear();
    }
  }

  // The CFG half's first pass over each cached chunk comes from the cache; a chunk that
  // could be cached and is not yet gets its pass stored after step 1.
  std::vector<UncondChunk> chunk(n);
  std::vector<std::shared_ptr<const UncondFirstPass>> cached(n);
  std::vector<bool> store(n, false);
  for (size_t i = 0; i < n; ++i) {
    const FlowRequest& r = batch[i];
    if (r.uncond_cache == nullptr || r.state == nullptr) continue;
    // Rows of x start at first[i], where the half's state stands.
    chunk[i] = {this, first[i], first[i] + x[i].rows, commit[i], r.state->half_kv};
    cached[i] = r.uncond_cache->find(chunk[i]);
    store[i] = cached[i] == nullptr;
  }

  // Euler steps; the conditional and CFG halves of every request go in one estimator call.
  const std::vector<float> t_span = cosine_t_span(kSteps);
  const auto cfg = static_cast<float>(config_.decoder.inference_cfg_rate);
  const auto cfg1 = static_cast<float>(1.0 + config_.decoder.inference_cfg_rate);
  float t = t_span[0], dt = t_span[1] - t_span[0];
  std::vector<EstimatorInput> in;
  std::vector<size_t> cond_at(n), uncond_at(n);  // each request's halves in `in` and `v`
  constexpr size_t kFromCache = static_cast<size_t>(-1);
  Batch v, from_cache(n);
  for (int64_t step = 1; step <= kSteps; ++step) {
    in.clear();
    for (size_t i = 0; i < n; ++i) {
      FlowStreamState* st = batch[i].state;
      EstimatorInput c;
      c.x = &x[i];
      c.mu = &mu[i];
      c.cond = &cond[i];
      c.spks = &spks[i];
      c.t = t;
      c.chunked = batch[i].streaming;
      EstimatorInput u;
      u.x = &x[i];
      u.t = t;
      u.chunked = batch[i].streaming;
      if (st != nullptr) {
        c.state = &st->estimator[static_cast<size_t>(2 * (step - 1))];
        u.state = &st->estimator[static_cast<size_t>(2 * (step - 1) + 1)];
        c.commit = u.commit = commit[i];
      }
      cond_at[i] = in.size();
      in.push_back(c);
      if (step == 1 && cached[i] != nullptr) {
        uncond_at[i] = kFromCache;
      } else {
        uncond_at[i] = in.size();
        in.push_back(u);
      }
    }
    estimator_.estimate(in, v);
    for (size_t i = 0; i < n; ++i) {
      Act* uncond = nullptr;
      if (uncond_at[i] == kFromCache) {
        const UncondFirstPass& p = *cached[i];
        from_cache[i].resize(e, x[i].rows, bins);
        e.b.copy(e.s, from_cache[i].ptr(), p.velocity.data(), p.velocity.bytes());
        batch[i].state->estimator[1] = p.state.clone(e);
        uncond = &from_cache[i];
      } else {
        uncond = &v[uncond_at[i]];
      }
      if (step == 1 && store[i]) {
        FlowEstimatorState& half = batch[i].state->estimator[1];
        for (auto& h : half.kv) h.share(e);  // the entry and this stream read the same rows
        auto entry = std::make_shared<UncondFirstPass>();
        entry->chunk = chunk[i];
        entry->velocity.assign(e.b, e.s, uncond->ptr(), uncond->size());
        entry->state = half.clone(e);
        batch[i].uncond_cache->insert(std::move(entry));
      }
      Act& conditional = v[cond_at[i]];
      if (FlowTrace* tr = batch[i].trace) {
        tr->est_t.push_back(t);
        if (step == 1) {
          tr->est0_out = download(e, conditional);
          const std::vector<float> u = download(e, *uncond);
          tr->est0_out.insert(tr->est0_out.end(), u.begin(), u.end());
        }
      }
      // dphi = (1 + cfg) v_cond - cfg v_uncond (into the CFG half), then x += dt dphi.
      const auto values = static_cast<int64_t>(x[i].size());
      e.k.axpby(e.s, conditional.ptr(), uncond->ptr(), values, cfg1, -cfg);
      e.k.axpby(e.s, uncond->ptr(), x[i].ptr(), values, dt, 1.0f);
    }
    t = t + dt;
    if (step < kSteps) dt = t_span[static_cast<size_t>(step + 1)] - t;
  }

  for (size_t i = 0; i < n; ++i) {
    const FlowRequest& r = batch[i];
    const auto prompt_frames = static_cast<int64_t>(r.prompt_feat.size()) / bins;
    std::vector<float> mel = download(e, x[i]);
    const int64_t skip = std::max<int64_t>(0, prompt_frames - first[i]);
    r.mel->assign(mel.begin() + skip * bins, mel.end());
    if (r.trace != nullptr) r.trace->mel_full = std::move(mel);
    if (r.first_frame != nullptr) *r.first_frame = first[i] + skip - prompt_frames;
  }
}

FlowStreamState FlowModel::prompt_state(std::span<const int32_t> prompt_tokens,
                                        std::span<const float> prompt_feat,
                                        std::span<const float> embedding, bool half_kv) const {
  return compute_prompt_state<FlowRequest>(*this, backend_, prompt_tokens, prompt_feat, embedding,
                                           half_kv, config_.encoder.static_chunk_size);
}

FlowStreamState FlowModel::copy_state(const FlowStreamState& state) const {
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  FlowStreamState copy = state.clone(e);
  stream->synchronize();
  return copy;
}

double FlowModel::flops(int64_t tokens) const { return flops(tokens, 0, false); }

double FlowModel::flops(int64_t tokens, int64_t past, bool streaming) const {
  const int64_t ratio = config_.token_mel_ratio;
  const int64_t chunk = streaming ? config_.decoder.estimator.static_chunk_size : 0;
  return encoder_.flops(tokens - past) +
         2.0 * kSteps * estimator_.flops((tokens - past) * ratio, past * ratio, chunk);
}

}  // namespace cosy
