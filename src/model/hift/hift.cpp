#include "model/hift/hift.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/hift/hift_resblock.h"
#include "model/hift/hift_source.h"
#include "model/layers.h"
#include "model/scratch_pool.h"

namespace cosy {

namespace {}  // namespace

namespace {

// The activations of one vocoder call, leased per call and kept from call to call, so a
// stream's chunks (and repeated batches) reuse their buffers instead of faulting in fresh
// pages for every layer.
struct Workspace {
  Batch mel, x, tmp, si, si2, xs, r, t, s_stft;
  Act src, re, im, wave;
};

}  // namespace

struct HiftVocoder::Workspaces : ScratchPool<Workspace> {};

struct HiftVocoder::Weights {
  std::vector<ConvLayer> f0_convs;
  std::shared_ptr<const PreparedWeight> f0_classifier;
  ConstArray<float> f0_classifier_b;
  std::vector<float> l_linear_w;  // the source module runs on the host
  float l_linear_b = 0;
  ConvLayer conv_pre;
  std::vector<std::shared_ptr<const PreparedWeight>> ups;
  std::vector<ConstArray<float>> ups_b;
  std::vector<ConvLayer> source_downs;
  std::vector<HiftResBlock> source_resblocks;
  std::vector<HiftResBlock> resblocks;
  ConvLayer conv_post;
  size_t bytes = 0;
};

HiftVocoder::HiftVocoder(Backend& backend, const HiftConfig& config, const StateDict& sd,
                         WeightFormat format)
    : backend_(backend),
      config_(config),
      w_(std::make_unique<Weights>()),
      workspaces_(std::make_unique<Workspaces>()) {
  config_.validate();
  if (config_.causal) {
    fail("hift: ", config_.class_name,
         " is CosyVoice3's causal vocoder; HiftVocoder is CosyVoice2's "
         "(model/hift/causal_hift.h is CosyVoice3's)");
  }
  const HiftConfig& c = config_;
  const WeightLoader wl(backend, sd, format);
  Weights& w = *w_;
  const auto& f0 = c.f0_predictor;
  for (int i = 0; i < 5; ++i) {
    w.f0_convs.push_back(load_conv(wl, "f0_predictor.condnet." + std::to_string(2 * i),
                                   f0.cond_channels, i == 0 ? f0.in_channels : f0.cond_channels, 3,
                                   1, 1));
  }
  // The tiny heads (classifier, l_linear) stay fp32 whatever the format.
  const WeightLoader wl32(backend, sd, WeightFormat::F32);
  w.f0_classifier = wl32.linear("f0_predictor.classifier", f0.num_class, f0.cond_channels);
  w.f0_classifier_b = wl.constants("f0_predictor.classifier.bias");
  w.l_linear_w = wl.floats("m_source.l_linear.weight");
  w.l_linear_b = wl.floats("m_source.l_linear.bias").at(0);
  const int64_t base = c.base_channels, stft_ch = c.n_fft + 2;
  w.conv_pre = load_conv(wl, "conv_pre", base, c.in_channels, 7, 3, 3);
  const size_t stages = c.upsample_rates.size();
  std::vector<int64_t> cum{1};
  for (size_t i = stages; i-- > 1;) cum.push_back(cum.back() * c.upsample_rates[i]);
  for (size_t i = 0; i < stages; ++i) {
    const int64_t cin = base >> i, cout = base >> (i + 1);
    w.ups.push_back(
        wl.conv_transpose1d("ups." + std::to_string(i), cin, cout, c.upsample_kernel_sizes[i]));
    w.ups_b.push_back(wl.constants("ups." + std::to_string(i) + ".bias"));
    const int64_t u = cum[stages - 1 - i];
    w.source_downs.push_back(
        u == 1 ? load_conv(wl, "source_downs." + std::to_string(i), cout, stft_ch, 1, 0, 0)
               : load_conv(wl, "source_downs." + std::to_string(i), cout, stft_ch, u * 2, u / 2,
                           u / 2, u));
    w.source_resblocks.push_back(load_hift_resblock(wl, "source_resblocks." + std::to_string(i),
                                                    cout, c.source_resblock_kernel_sizes[i],
                                                    c.source_resblock_dilation_sizes[i], false));
    for (size_t j = 0; j < c.resblock_kernel_sizes.size(); ++j) {
      w.resblocks.push_back(load_hift_resblock(
          wl, "resblocks." + std::to_string(i * c.resblock_kernel_sizes.size() + j), cout,
          c.resblock_kernel_sizes[j], c.resblock_dilation_sizes[j], false));
    }
  }
  w.conv_post = load_conv(wl, "conv_post", stft_ch, base >> stages, 7, 3, 3);

  auto add = [&](const PreparedWeight& p) { w.bytes += p.bytes(); };
  for (const auto& cv : w.f0_convs) add(*cv.w);
  add(*w.conv_pre.w);
  add(*w.conv_post.w);
  for (const auto& u : w.ups) add(*u);
  for (const auto& cv : w.source_downs) add(*cv.w);
  for (const auto* list : {&w.source_resblocks, &w.resblocks}) {
    for (const auto& rb : *list) {
      for (const auto& l : rb.layers) {
        add(*l.conv1.w);
        add(*l.conv2.w);
      }
    }
  }
}

HiftVocoder::~HiftVocoder() = default;

size_t HiftVocoder::weight_bytes() const { return w_->bytes; }

void HiftVocoder::check(const HiftRequest& r) const {
  if (r.frames <= 0) fail("hift: the mel has no frames");
  if (static_cast<int64_t>(r.mel.size()) != r.frames * config_.in_channels) {
    fail("hift: the mel has ", r.mel.size(), " values, expected ", r.frames, " frames x ",
         config_.in_channels, " channels");
  }
  for (size_t i = 0; i < r.mel.size(); ++i) {
    if (!std::isfinite(r.mel[i])) {
      fail("hift: the mel has a non-finite value (", r.mel[i], ") at frame ",
           static_cast<int64_t>(i) / config_.in_channels, ", channel ",
           static_cast<int64_t>(i) % config_.in_channels);
    }
  }
  if (r.rng == nullptr) fail("hift: no random generator given");
  if (r.speech == nullptr) fail("hift: no output buffer given");
  if (!r.injected_source.empty() &&
      static_cast<int64_t>(r.injected_source.size()) != r.frames * samples_per_frame()) {
    fail("hift: the injected source has ", r.injected_source.size(), " samples, expected ",
         r.frames * samples_per_frame());
  }
  if (!r.injected_f0.empty()) {
    if (static_cast<int64_t>(r.injected_f0.size()) != r.frames) {
      fail("hift: the injected F0 has ", r.injected_f0.size(), " values, expected ", r.frames);
    }
    for (size_t i = 0; i < r.injected_f0.size(); ++i) {
      if (!(r.injected_f0[i] >= 0.0f) || !std::isfinite(r.injected_f0[i]))
        fail("hift: the injected F0 at frame ", i, " is ", r.injected_f0[i],
             ", not a finite value >= 0");
    }
  }
  if (static_cast<int64_t>(r.cache_source.size()) > r.frames * samples_per_frame()) {
    fail("hift: cache_source (", r.cache_source.size(), " samples) is longer than the output");
  }
}

void HiftVocoder::vocode(std::span<HiftRequest> batch) const {
  for (const auto& r : batch) check(r);
  const HiftConfig& c = config_;
  const Weights& w = *w_;
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  Primitives& k = e.k;
  const size_t n = batch.size();
  const int64_t up = samples_per_frame();
  const int64_t bins = c.n_fft / 2 + 1, stft_ch = c.n_fft + 2;

  auto lease = workspaces_->take();
  Workspace& ws = *lease;
  auto add_into = [&](Act& y, const Act& x) {
    k.axpby(e.s, x.ptr(), y.ptr(), static_cast<int64_t>(y.size()), 1.0f, 1.0f);
  };

  // F0 from the mel.
  std::vector<Act>&mel = ws.mel, &x = ws.x, &tmp = ws.tmp;
  mel.resize(n);
  x.resize(n);
  tmp.resize(n);
  for (size_t i = 0; i < n; ++i) upload(e, batch[i].mel, batch[i].frames, c.in_channels, mel[i]);
  w.f0_convs[0].run(e, mel, x, {}, false);
  for (size_t l = 1; l < w.f0_convs.size(); ++l) {
    w.f0_convs[l].run(e, x, tmp, {ActivationKind::Elu}, false);
    std::swap(x, tmp);
  }
  std::vector<std::vector<float>> f0(n);
  {
    std::vector<Segment> segs(n);
    for (size_t i = 0; i < n; ++i) {
      k.activation(e.s, x[i].ptr(), x[i].rows, x[i].ch, {ActivationKind::Elu});
      tmp[i].resize(e, x[i].rows, 1);
      segs[i] = {x[i].ptr(), x[i].rows, tmp[i].ptr()};
    }
    k.linear(e.s, segs, {w.f0_classifier.get(), w.f0_classifier_b.data(), false});
    for (size_t i = 0; i < n; ++i) {
      k.activation(e.s, tmp[i].ptr(), tmp[i].rows, 1, {ActivationKind::Abs});
      f0[i] = download(e, tmp[i]);  // the source module draws on the host
      if (!batch[i].injected_f0.empty())
        f0[i].assign(batch[i].injected_f0.begin(), batch[i].injected_f0.end());
    }
  }

  // Source signal and its STFT, as [frames, 18] = (real | imaginary) per frame.
  std::vector<std::vector<float>> source(n);
  std::vector<Act>& s_stft = ws.s_stft;
  s_stft.resize(n);
  Act &src = ws.src, &re = ws.re, &im = ws.im;
  // The sources are drawn on the host, each from its request's own generator: a batch's
  // streams draw side by side on the pool's threads (about 5 % of a single 1 s call, which
  // otherwise leaves the other cores idle).
  std::vector<HarmonicSource> sources(n);
  ThreadPool::global().parallel_for(static_cast<int64_t>(n), [&](int64_t task) {
    const auto i = static_cast<size_t>(task);
    sources[i] = harmonic_source(f0[i], up, c, w.l_linear_w, w.l_linear_b, *batch[i].rng);
  });
  for (size_t i = 0; i < n; ++i) {
    HarmonicSource& hs = sources[i];
    source[i] = std::move(hs.merged);
    if (!batch[i].injected_source.empty()) {
      source[i].assign(batch[i].injected_source.begin(), batch[i].injected_source.end());
    }
    std::copy(batch[i].cache_source.begin(), batch[i].cache_source.end(), source[i].begin());
    const auto len = static_cast<int64_t>(source[i].size());
    const int64_t frames = 1 + len / c.hop_len;
    upload(e, source[i], len, 1, src);
    re.resize(e, frames, bins);
    im.resize(e, frames, bins);
    k.stft(e.s, src.ptr(), len, c.n_fft, c.hop_len, re.ptr(), im.ptr());
    s_stft[i].resize(e, frames, stft_ch);
    k.copy_2d(e.s, re.ptr(), bins, s_stft[i].ptr(), stft_ch, frames, bins);
    k.copy_2d(e.s, im.ptr(), bins, s_stft[i].ptr() + bins, stft_ch, frames, bins);
    if (HiftTrace* t = batch[i].trace) {
      t->f0 = f0[i];
      t->sine_waves = std::move(hs.sine_waves);
      t->uv = std::move(hs.uv);
      t->source = source[i];
      t->stft_real = download(e, re);
      t->stft_imag = download(e, im);
    }
  }

  // Decode.
  w.conv_pre.run(e, mel, x, {}, false);
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].trace != nullptr) batch[i].trace->conv_pre_out = download(e, x[i]);
  }
  const size_t stages = c.upsample_rates.size();
  const size_t kernels = c.resblock_kernel_sizes.size();
  std::vector<Act>&si = ws.si, &si2 = ws.si2, &xs = ws.xs, &r = ws.r;
  for (auto* b : {&si, &si2, &xs, &r}) b->resize(n);
  for (size_t st = 0; st < stages; ++st) {
    ConvTranspose1dArgs a;
    a.weight = w.ups[st].get();
    a.bias = w.ups_b[st].data();
    a.in_channels = c.base_channels >> st;
    a.out_channels = c.base_channels >> (st + 1);
    a.kernel = c.upsample_kernel_sizes[st];
    a.stride = c.upsample_rates[st];
    a.padding = (a.kernel - a.stride) / 2;
    a.pre = {ActivationKind::LeakyRelu, static_cast<float>(c.lrelu_slope)};
    std::vector<Segment> segs(n);
    const bool last = st + 1 == stages;
    for (size_t i = 0; i < n; ++i) {
      // The last stage is reflection-padded by one step on the left: row 0 = row 2 of the
      // padded output, i.e. the conv's row 1.
      tmp[i].resize(e, a.out_length(x[i].rows) + (last ? 1 : 0), a.out_channels);
      segs[i] = {x[i].ptr(), x[i].rows, tmp[i].row(last ? 1 : 0)};
    }
    k.conv_transpose1d(e.s, segs, a);
    if (last) {
      for (auto& t : tmp) k.copy_2d(e.s, t.row(2), t.ch, t.ptr(), t.ch, 1, t.ch);
    }
    std::swap(x, tmp);

    w.source_downs[st].run(e, s_stft, si, {}, false);
    w.source_resblocks[st].run(e, si, si2, ws.t);
    for (size_t i = 0; i < n; ++i) {
      if (si2[i].rows != x[i].rows) fail("hift: source and upsampled lengths differ at stage ", st);
      add_into(x[i], si2[i]);
    }
    for (size_t j = 0; j < kernels; ++j) {
      w.resblocks[st * kernels + j].run(e, x, r, ws.t);
      for (size_t i = 0; i < n; ++i) {
        if (j == 0) {
          std::swap(xs[i], r[i]);
        } else {
          add_into(xs[i], r[i]);
        }
      }
    }
    // x = the resblocks' mean.
    for (size_t i = 0; i < n; ++i) {
      k.axpby(e.s, nullptr, xs[i].ptr(), static_cast<int64_t>(xs[i].size()), 0.0f,
              1.0f / static_cast<float>(kernels));
      std::swap(x[i], xs[i]);
    }
  }
  w.conv_post.run(e, x, tmp, {ActivationKind::LeakyRelu, 0.01f}, false);

  Act& wave = ws.wave;
  for (size_t i = 0; i < n; ++i) {
    const int64_t frames = tmp[i].rows;
    re.resize(e, frames, bins);
    im.resize(e, frames, bins);
    k.polar_spectrum(e.s, tmp[i].ptr(), stft_ch, frames, bins, 100.0f, re.ptr(), im.ptr());
    wave.resize(e, c.hop_len * (frames - 1), 1);
    k.istft(e.s, re.ptr(), im.ptr(), frames, c.n_fft, c.hop_len, wave.ptr());
    if (HiftTrace* t = batch[i].trace) {
      t->conv_post_out = download(e, tmp[i]);
      t->istft_out = download(e, wave);
    }
    k.activation(e.s, wave.ptr(), wave.rows, 1,
                 {ActivationKind::Clamp, 0, nullptr, static_cast<float>(c.audio_limit)});
    *batch[i].speech = download(e, wave);
    if (batch[i].source != nullptr) *batch[i].source = std::move(source[i]);
  }
  stream->synchronize();
}

std::vector<float> HiftVocoder::vocode(std::span<const float> mel, int64_t frames,
                                       TorchGenerator& rng) const {
  std::vector<float> speech;
  HiftRequest r;
  r.mel = mel;
  r.frames = frames;
  r.rng = &rng;
  r.speech = &speech;
  vocode({&r, 1});
  return speech;
}

double HiftVocoder::flops(int64_t frames) const {
  const HiftConfig& c = config_;
  const Weights& w = *w_;
  double total = 0;
  for (const auto& cv : w.f0_convs) total += cv.flops(frames);
  total += w.conv_pre.flops(frames);
  int64_t len = frames;
  const size_t kernels = c.resblock_kernel_sizes.size();
  for (size_t st = 0; st < c.upsample_rates.size(); ++st) {
    const int64_t cin = c.base_channels >> st, cout = c.base_channels >> (st + 1);
    total += 2.0 * static_cast<double>(cin * cout * c.upsample_kernel_sizes[st] * len);
    len = len * c.upsample_rates[st] + (st + 1 == c.upsample_rates.size() ? 1 : 0);
    total += w.source_downs[st].flops(len) + w.source_resblocks[st].flops(len);
    for (size_t j = 0; j < kernels; ++j) total += w.resblocks[st * kernels + j].flops(len);
  }
  total += w.conv_post.flops(len);
  return total;
}

}  // namespace cosy
