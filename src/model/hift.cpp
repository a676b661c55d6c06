#include "model/hift.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "model/hift_source.h"
#include "model/layers.h"

namespace cosy {

namespace {

struct ResBlock {
  struct Layer {
    ConvLayer conv1, conv2;
    std::vector<float> alpha1, alpha2;
  };
  std::vector<Layer> layers;
};

ResBlock load_resblock(const WeightLoader& wl, const std::string& p, int64_t ch, int64_t k,
                       const std::vector<int64_t>& dilations) {
  ResBlock rb;
  for (size_t i = 0; i < dilations.size(); ++i) {
    const int64_t d = dilations[i];
    ResBlock::Layer l;
    const int64_t pad1 = (k * d - d) / 2, pad2 = (k - 1) / 2;
    l.conv1 = load_conv(wl, p + ".convs1." + std::to_string(i), ch, ch, k, pad1, pad1, 1, d);
    l.conv2 = load_conv(wl, p + ".convs2." + std::to_string(i), ch, ch, k, pad2, pad2);
    l.alpha1 = wl.floats(p + ".activations1." + std::to_string(i) + ".alpha");
    l.alpha2 = wl.floats(p + ".activations2." + std::to_string(i) + ".alpha");
    rb.layers.push_back(std::move(l));
  }
  return rb;
}

}  // namespace

struct HiftVocoder::Weights {
  std::vector<ConvLayer> f0_convs;
  std::shared_ptr<const PreparedWeight> f0_classifier;
  std::vector<float> f0_classifier_b;
  std::vector<float> l_linear_w;
  float l_linear_b = 0;
  ConvLayer conv_pre;
  std::vector<std::shared_ptr<const PreparedWeight>> ups;
  std::vector<std::vector<float>> ups_b;
  std::vector<ConvLayer> source_downs;
  std::vector<ResBlock> source_resblocks;
  std::vector<ResBlock> resblocks;
  ConvLayer conv_post;
  size_t bytes = 0;
};

HiftVocoder::HiftVocoder(Backend& backend, const HiftConfig& config, const StateDict& sd,
                         WeightFormat format)
    : backend_(backend), config_(config), w_(std::make_unique<Weights>()) {
  config_.validate();
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
  w.f0_classifier_b = wl.floats("f0_predictor.classifier.bias");
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
    w.ups_b.push_back(wl.floats("ups." + std::to_string(i) + ".bias"));
    const int64_t u = cum[stages - 1 - i];
    w.source_downs.push_back(
        u == 1 ? load_conv(wl, "source_downs." + std::to_string(i), cout, stft_ch, 1, 0, 0)
               : load_conv(wl, "source_downs." + std::to_string(i), cout, stft_ch, u * 2, u / 2,
                           u / 2, u));
    w.source_resblocks.push_back(load_resblock(wl, "source_resblocks." + std::to_string(i), cout,
                                               c.source_resblock_kernel_sizes[i],
                                               c.source_resblock_dilation_sizes[i]));
    for (size_t j = 0; j < c.resblock_kernel_sizes.size(); ++j) {
      w.resblocks.push_back(
          load_resblock(wl, "resblocks." + std::to_string(i * c.resblock_kernel_sizes.size() + j),
                        cout, c.resblock_kernel_sizes[j], c.resblock_dilation_sizes[j]));
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
  if (static_cast<int64_t>(r.cache_source.size()) > r.frames * samples_per_frame()) {
    fail("hift: cache_source (", r.cache_source.size(), " samples) is longer than the output");
  }
}

void HiftVocoder::vocode(std::span<HiftRequest> batch) const {
  for (const auto& r : batch) check(r);
  const HiftConfig& c = config_;
  const Weights& w = *w_;
  Primitives& k = backend_.primitives();
  auto stream = backend_.create_stream();
  const size_t n = batch.size();
  const int64_t up = samples_per_frame();
  const int64_t bins = c.n_fft / 2 + 1, stft_ch = c.n_fft + 2;

  Exec e{k, *stream};
  auto resblock_all = [&](const ResBlock& rb, const std::vector<Act>& x, std::vector<Act>& y) {
    y = x;
    std::vector<Act> t(n);
    for (const auto& l : rb.layers) {
      l.conv1.run(e, y, t, {ActivationKind::Snake, 0, l.alpha1.data()}, false);
      l.conv2.run(e, t, y, {ActivationKind::Snake, 0, l.alpha2.data()}, true);
    }
  };

  // F0 from the mel.
  std::vector<Act> mel(n), x(n), tmp(n);
  for (size_t i = 0; i < n; ++i) {
    mel[i].resize(batch[i].frames, c.in_channels);
    std::copy(batch[i].mel.begin(), batch[i].mel.end(), mel[i].data.begin());
  }
  w.f0_convs[0].run(e, mel, x, {}, false);
  for (size_t l = 1; l < w.f0_convs.size(); ++l) {
    w.f0_convs[l].run(e, x, tmp, {ActivationKind::Elu}, false);
    std::swap(x, tmp);
  }
  std::vector<std::vector<float>> f0(n);
  {
    std::vector<Segment> segs(n);
    for (size_t i = 0; i < n; ++i) {
      k.activation(*stream, x[i].data.data(), x[i].rows, x[i].ch, {ActivationKind::Elu});
      f0[i].resize(static_cast<size_t>(x[i].rows));
      segs[i] = {x[i].data.data(), x[i].rows, f0[i].data()};
    }
    k.linear(*stream, segs, {w.f0_classifier.get(), w.f0_classifier_b.data(), false});
    for (auto& v : f0)
      for (float& f : v) f = std::fabs(f);
  }

  // Source signal and its STFT, as [frames, 18] = (real | imaginary) per frame.
  std::vector<std::vector<float>> source(n);
  std::vector<Act> s_stft(n);
  for (size_t i = 0; i < n; ++i) {
    HarmonicSource hs = harmonic_source(f0[i], up, c, w.l_linear_w, w.l_linear_b, *batch[i].rng);
    source[i] = std::move(hs.merged);
    if (!batch[i].injected_source.empty()) {
      source[i].assign(batch[i].injected_source.begin(), batch[i].injected_source.end());
    }
    std::copy(batch[i].cache_source.begin(), batch[i].cache_source.end(), source[i].begin());
    const auto len = static_cast<int64_t>(source[i].size());
    const int64_t frames = 1 + len / c.hop_len;
    std::vector<float> re(static_cast<size_t>(frames * bins)), im(re.size());
    k.stft(*stream, source[i].data(), len, c.n_fft, c.hop_len, re.data(), im.data());
    s_stft[i].resize(frames, stft_ch);
    for (int64_t f = 0; f < frames; ++f) {
      std::copy_n(re.data() + f * bins, bins, s_stft[i].data.data() + f * stft_ch);
      std::copy_n(im.data() + f * bins, bins, s_stft[i].data.data() + f * stft_ch + bins);
    }
    if (HiftTrace* t = batch[i].trace) {
      t->f0 = f0[i];
      t->sine_waves = std::move(hs.sine_waves);
      t->uv = std::move(hs.uv);
      t->source = source[i];
      t->stft_real = std::move(re);
      t->stft_imag = std::move(im);
    }
  }

  // Decode.
  w.conv_pre.run(e, mel, x, {}, false);
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].trace != nullptr) batch[i].trace->conv_pre_out = x[i].data;
  }
  const size_t stages = c.upsample_rates.size();
  const size_t kernels = c.resblock_kernel_sizes.size();
  std::vector<Act> si(n), si2(n), xs(n), r(n);
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
      tmp[i].resize(a.out_length(x[i].rows) + (last ? 1 : 0), a.out_channels);
      segs[i] = {x[i].data.data(), x[i].rows, tmp[i].data.data() + (last ? a.out_channels : 0)};
    }
    k.conv_transpose1d(*stream, segs, a);
    if (last) {
      for (auto& t : tmp) std::copy_n(t.data.data() + 2 * t.ch, t.ch, t.data.data());
    }
    std::swap(x, tmp);

    w.source_downs[st].run(e, s_stft, si, {}, false);
    resblock_all(w.source_resblocks[st], si, si2);
    for (size_t i = 0; i < n; ++i) {
      if (si2[i].rows != x[i].rows) fail("hift: source and upsampled lengths differ at stage ", st);
      for (size_t e = 0; e < x[i].data.size(); ++e) x[i].data[e] += si2[i].data[e];
    }
    for (size_t j = 0; j < kernels; ++j) {
      resblock_all(w.resblocks[st * kernels + j], x, r);
      for (size_t i = 0; i < n; ++i) {
        if (j == 0) {
          xs[i] = std::move(r[i]);
        } else {
          for (size_t e = 0; e < xs[i].data.size(); ++e) xs[i].data[e] += r[i].data[e];
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      for (size_t e = 0; e < xs[i].data.size(); ++e)
        x[i].data[e] = xs[i].data[e] / static_cast<float>(kernels);
    }
  }
  w.conv_post.run(e, x, tmp, {ActivationKind::LeakyRelu, 0.01f}, false);

  for (size_t i = 0; i < n; ++i) {
    const int64_t frames = tmp[i].rows;
    std::vector<float> re(static_cast<size_t>(frames * bins)), im(re.size());
    for (int64_t f = 0; f < frames; ++f) {
      const float* row = tmp[i].data.data() + f * stft_ch;
      for (int64_t b = 0; b < bins; ++b) {
        const float mag = std::min(std::exp(row[b]), 100.0f);
        const float phase = std::sin(row[bins + b]);
        re[static_cast<size_t>(f * bins + b)] = mag * std::cos(phase);
        im[static_cast<size_t>(f * bins + b)] = mag * std::sin(phase);
      }
    }
    std::vector<float>& speech = *batch[i].speech;
    speech.resize(static_cast<size_t>(c.hop_len * (frames - 1)));
    k.istft(*stream, re.data(), im.data(), frames, c.n_fft, c.hop_len, speech.data());
    if (HiftTrace* t = batch[i].trace) {
      t->conv_post_out = tmp[i].data;
      t->istft_out = speech;
    }
    const auto limit = static_cast<float>(c.audio_limit);
    for (float& v : speech) v = std::clamp(v, -limit, limit);
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
    total += w.source_downs[st].flops(len);
    for (const auto& l : w.source_resblocks[st].layers)
      total += l.conv1.flops(len) + l.conv2.flops(len);
    for (size_t j = 0; j < kernels; ++j) {
      for (const auto& l : w.resblocks[st * kernels + j].layers)
        total += l.conv1.flops(len) + l.conv2.flops(len);
    }
  }
  total += w.conv_post.flops(len);
  return total;
}

}  // namespace cosy
