#include "model/hift/causal_hift.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/hift/hift_resblock.h"
#include "model/hift/hift_source.h"
#include "model/layers.h"
#include "model/param_schema.h"

namespace cosy {
namespace {

constexpr int64_t kF0LookAhead = 3;   // the F0 predictor's first conv: k = 4, to the right
constexpr int64_t kF0Kernel = 3;      // its other convs, to the left
constexpr int64_t kMaxSeconds = 300;  // the official fixed buffers' length

std::vector<double> to_f64(const Tensor& t) {
  const std::vector<float> f = t.to_float_vector();
  return {f.begin(), f.end()};
}

// `<base>.weight` in float64. A weight-normed one is folded (g · v / ‖v‖ per output
// channel) in float64, as the official predictor computes it after .to(torch.float64).
std::vector<double> weight_f64(const StateDict& sd, const std::string& base) {
  if (const Tensor* w = sd.find(base + ".weight")) return to_f64(*w);
  for (const auto& form : weight_norm_forms(base + ".weight")) {
    const Tensor* g = sd.find(form.g);
    const Tensor* v = sd.find(form.v);
    if (g == nullptr || v == nullptr) continue;
    const std::vector<double> gv = to_f64(*g);
    std::vector<double> w = to_f64(*v);
    const size_t per = w.size() / gv.size();
    for (size_t o = 0; o < gv.size(); ++o) {
      double ss = 0;
      for (size_t i = 0; i < per; ++i) ss += w[o * per + i] * w[o * per + i];
      const double scale = gv[o] / std::sqrt(ss);
      for (size_t i = 0; i < per; ++i) w[o * per + i] *= scale;
    }
    return w;
  }
  fail(sd.label, ": missing '", base, ".weight'");
}

// A float64 conv, its weight as [tap][in][out] so the inner loop runs over outputs.
struct ConvF64 {
  std::vector<double> w, b;
  int64_t in = 0, out = 0, k = 0;

  // x [rows, in] with pad_left / pad_right zero rows → [rows + pads - k + 1, out].
  std::vector<double> run(const std::vector<double>& x, int64_t rows, int64_t pad_left,
                          int64_t pad_right) const {
    const int64_t out_rows = rows + pad_left + pad_right - k + 1;
    std::vector<double> y(static_cast<size_t>(std::max<int64_t>(out_rows, 0) * out));
    constexpr int64_t kBlock = 8;  // output rows per pass over the weight
    ThreadPool::global().parallel_range(out_rows, kBlock, [&](int64_t begin, int64_t end) {
      for (int64_t t0 = begin; t0 < end; t0 += kBlock) {
        const int64_t t1 = std::min(end, t0 + kBlock);
        for (int64_t t = t0; t < t1; ++t) std::copy(b.begin(), b.end(), y.begin() + t * out);
        for (int64_t tap = 0; tap < k; ++tap) {
          for (int64_t c = 0; c < in; ++c) {
            const double* wr = w.data() + (tap * in + c) * out;
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t src = t + tap - pad_left;
              if (src < 0 || src >= rows) continue;
              const double xv = x[static_cast<size_t>(src * in + c)];
              double* yr = y.data() + t * out;
              for (int64_t o = 0; o < out; ++o) yr[o] += xv * wr[o];
            }
          }
        }
      }
    });
    return y;
  }
};

ConvF64 load_conv_f64(const StateDict& sd, const std::string& base, int64_t out, int64_t in,
                      int64_t k) {
  const std::vector<double> torch_w = weight_f64(sd, base);
  if (static_cast<int64_t>(torch_w.size()) != out * in * k)
    fail(sd.label, ": '", base, "' is not [", out, ", ", in, ", ", k, "]");
  ConvF64 c{std::vector<double>(torch_w.size()), to_f64(sd.at(base + ".bias")), in, out, k};
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t tap = 0; tap < k; ++tap)
        c.w[static_cast<size_t>((tap * in + i) * out + o)] =
            torch_w[static_cast<size_t>((o * in + i) * k + tap)];
  return c;
}

void elu(std::vector<double>& x) {
  for (double& v : x) v = v > 0 ? v : std::exp(v) - 1.0;  // torch's ELU, alpha 1
}

}  // namespace

struct CausalHiftVocoder::Weights {
  std::vector<ConvF64> f0_convs;
  std::vector<double> f0_classifier_w;
  double f0_classifier_b = 0;
  std::vector<float> l_linear_w;  // the source module runs on the host
  float l_linear_b = 0;
  std::unique_ptr<FixedSourceNoise> noise;
  ConvLayer conv_pre;  // unpadded; a final call pads conv_pre_look_right zero frames
  std::vector<ConvLayer> ups;
  std::vector<ConvLayer> source_downs;
  std::vector<HiftResBlock> source_resblocks, resblocks;
  ConvLayer conv_post;
};

CausalHiftVocoder::CausalHiftVocoder(Backend& backend, const HiftConfig& config,
                                     const StateDict& sd, int64_t noise_offset, WeightFormat format)
    : backend_(backend), config_(config), w_(std::make_unique<Weights>()) {
  config_.validate();
  const HiftConfig& c = config_;
  if (!c.causal) fail("causal hift: ", c.class_name, " is not CosyVoice3's CausalHiFTGenerator");
  Weights& w = *w_;
  const auto& f0 = c.f0_predictor;
  for (int i = 0; i < 5; ++i) {
    w.f0_convs.push_back(load_conv_f64(sd, "f0_predictor.condnet." + std::to_string(2 * i),
                                       f0.cond_channels, i == 0 ? f0.in_channels : f0.cond_channels,
                                       i == 0 ? kF0LookAhead + 1 : kF0Kernel));
  }
  w.f0_classifier_w = to_f64(sd.at("f0_predictor.classifier.weight"));
  w.f0_classifier_b = to_f64(sd.at("f0_predictor.classifier.bias")).at(0);
  if (static_cast<int64_t>(w.f0_classifier_w.size()) != f0.cond_channels)
    fail(sd.label, ": f0_predictor.classifier must map ", f0.cond_channels, " channels to 1");
  const WeightLoader wl(backend, sd, format);
  w.l_linear_w = wl.floats("m_source.l_linear.weight");
  w.l_linear_b = wl.floats("m_source.l_linear.bias").at(0);
  w.noise = std::make_unique<FixedSourceNoise>(noise_offset, c.nb_harmonics + 1,
                                               kMaxSeconds * c.sampling_rate);
  const int64_t base = c.base_channels, stft_ch = c.n_fft + 2;
  w.conv_pre = load_conv(wl, "conv_pre", base, c.in_channels, c.conv_pre_look_right + 1, 0, 0);
  const size_t stages = c.upsample_rates.size();
  std::vector<int64_t> cum{1};
  for (size_t i = stages; i-- > 1;) cum.push_back(cum.back() * c.upsample_rates[i]);
  for (size_t i = 0; i < stages; ++i) {
    const int64_t cin = base >> i, cout = base >> (i + 1), k = c.upsample_kernel_sizes[i];
    // CausalConv1dUpsample: nearest ×rate, then a left-causal conv.
    w.ups.push_back(load_conv(wl, "ups." + std::to_string(i), cout, cin, k, k - 1, 0));
    // CausalConv1dDownSample: kernel 2u, stride u, u - 1 frames on the left.
    const int64_t u = cum[stages - 1 - i];
    w.source_downs.push_back(load_conv(wl, "source_downs." + std::to_string(i), cout, stft_ch,
                                       u == 1 ? 1 : 2 * u, u - 1, 0, u));
    w.source_resblocks.push_back(load_hift_resblock(wl, "source_resblocks." + std::to_string(i),
                                                    cout, c.source_resblock_kernel_sizes[i],
                                                    c.source_resblock_dilation_sizes[i], true));
    for (size_t j = 0; j < c.resblock_kernel_sizes.size(); ++j) {
      w.resblocks.push_back(load_hift_resblock(
          wl, "resblocks." + std::to_string(i * c.resblock_kernel_sizes.size() + j), cout,
          c.resblock_kernel_sizes[j], c.resblock_dilation_sizes[j], true));
    }
  }
  w.conv_post = load_conv(wl, "conv_post", stft_ch, base >> stages, 7, 6, 0);
}

CausalHiftVocoder::~CausalHiftVocoder() = default;

int64_t CausalHiftVocoder::held_back_frames() const {
  return kF0LookAhead + config_.conv_pre_look_right + 1;
}

int64_t CausalHiftVocoder::f0_context_frames() const {
  return static_cast<int64_t>(w_->f0_convs.size() - 1) * (kF0Kernel - 1);
}

int64_t CausalHiftVocoder::decoder_context_frames() const {
  // Sums every layer's left reach, in rows of its own rate, as mel frames: an upper bound
  // (the parallel branches' reaches are added, not maxed).
  const HiftConfig& c = config_;
  auto resblock_reach = [](int64_t k, const std::vector<int64_t>& dil) {
    int64_t r = 0;
    for (const int64_t d : dil) r += (k - 1) * d + (k - 1);
    return r;
  };
  double frames = 0;
  int64_t rate = 1;
  for (size_t st = 0; st < c.upsample_rates.size(); ++st) {
    rate *= c.upsample_rates[st];
    int64_t rows = c.upsample_kernel_sizes[st] - 1 + 1;  // the conv, and a reflected row
    for (size_t j = 0; j < c.resblock_kernel_sizes.size(); ++j)
      rows += resblock_reach(c.resblock_kernel_sizes[j], c.resblock_dilation_sizes[j]);
    rows +=
        resblock_reach(c.source_resblock_kernel_sizes[st], c.source_resblock_dilation_sizes[st]);
    frames += static_cast<double>(rows) / static_cast<double>(rate);
  }
  // The source downsampling, conv_post, the STFT and iSTFT windows, at the STFT rate.
  const int64_t stft_rate = samples_per_frame() / c.hop_len;
  const int64_t window_rows = 2 * c.n_fft / c.hop_len;  // an STFT and an iSTFT frame
  frames += static_cast<double>(stft_rate + 6 + window_rows) / static_cast<double>(stft_rate);
  return static_cast<int64_t>(std::ceil(frames)) + 1;
}

std::span<const float> CausalHiftVocoder::rand_ini() const { return w_->noise->rand_ini(); }

std::span<const float> CausalHiftVocoder::source_noise(int64_t samples) const {
  return w_->noise->rows(samples);
}

void CausalHiftVocoder::check(const CausalHiftRequest& r) const {
  if (r.frames <= 0) fail("hift: the mel has no frames");
  if (static_cast<int64_t>(r.mel.size()) != r.frames * config_.in_channels) {
    fail("hift: the mel has ", r.mel.size(), " values, expected ", r.frames, " frames x ",
         config_.in_channels, " channels");
  }
  if (r.f0_context < 0 || r.first_sample < 0) fail("hift: negative window offsets");
  const int64_t made = r.frames - r.f0_context;  // frames that make audio
  if (made <= (r.finalize ? 0 : held_back_frames())) {
    fail("hift: a ", r.finalize ? "final" : "non-final", " call needs more than ",
         r.finalize ? 0 : held_back_frames(), " mel frames after its F0 context, got ", made);
  }
  if (!r.phase_start.empty() &&
      static_cast<int64_t>(r.phase_start.size()) != config_.nb_harmonics + 1)
    fail("hift: the start phases need one value per harmonic");
  for (size_t i = 0; i < r.mel.size(); ++i) {
    if (!std::isfinite(r.mel[i]))
      fail("hift: the mel has a non-finite value (", r.mel[i], ") at frame ",
           static_cast<int64_t>(i) / config_.in_channels);
  }
  if (r.speech == nullptr) fail("hift: no output buffer given");
}

std::vector<float> CausalHiftVocoder::predict_f0(std::span<const float> mel, int64_t frames,
                                                 bool finalize) const {
  const Weights& w = *w_;
  std::vector<double> h(mel.begin(), mel.end());
  int64_t rows = frames;
  for (size_t l = 0; l < w.f0_convs.size(); ++l) {
    const bool first = l == 0;
    h = w.f0_convs[l].run(h, rows, first ? 0 : kF0Kernel - 1, first && finalize ? kF0LookAhead : 0);
    rows = static_cast<int64_t>(h.size()) / w.f0_convs[l].out;
    elu(h);
  }
  const int64_t ch = w.f0_convs.back().out;
  std::vector<float> f0(static_cast<size_t>(rows));
  for (int64_t t = 0; t < rows; ++t) {
    double acc = w.f0_classifier_b;
    for (int64_t c = 0; c < ch; ++c)
      acc += w.f0_classifier_w[static_cast<size_t>(c)] * h[static_cast<size_t>(t * ch + c)];
    f0[static_cast<size_t>(t)] = static_cast<float>(std::fabs(acc));
  }
  return f0;
}

void CausalHiftVocoder::vocode(std::span<CausalHiftRequest> batch) const {
  for (const auto& r : batch) check(r);
  const HiftConfig& c = config_;
  const Weights& w = *w_;
  auto stream = backend_.create_stream();
  Exec e(backend_, *stream);
  Primitives& k = e.k;
  const size_t n = batch.size();
  const int64_t up = samples_per_frame(), harmonics = c.nb_harmonics + 1;
  const int64_t bins = c.n_fft / 2 + 1, stft_ch = c.n_fft + 2;
  const int64_t stft_per_frame = up / c.hop_len;

  // F0 (float64, host) → the source → its STFT as [frames, 18] = (real | imaginary).
  Batch s_stft(n), mel(n);
  for (size_t i = 0; i < n; ++i) {
    const CausalHiftRequest& r = batch[i];
    std::vector<float> f0 = predict_f0(r.mel, r.frames, r.finalize);
    f0.erase(f0.begin(), f0.begin() + r.f0_context);  // context only
    const auto len = static_cast<int64_t>(f0.size()) * up;
    const auto noise = w.noise->rows(r.first_sample + len)
                           .subspan(static_cast<size_t>(r.first_sample * harmonics));
    HarmonicSource hs = causal_harmonic_source(
        f0, up, c, w.l_linear_w, w.l_linear_b,
        r.first_sample == 0 ? w.noise->rand_ini() : std::span<const float>(), noise, r.phase_start);
    if (r.phase_cum != nullptr) *r.phase_cum = hs.cum;
    Act src, re, im;
    upload(e, hs.merged, len, 1, src);
    const int64_t frames = 1 + len / c.hop_len;
    re.resize(e, frames, bins);
    im.resize(e, frames, bins);
    k.stft(e.s, src.ptr(), len, c.n_fft, c.hop_len, re.ptr(), im.ptr());
    // A non-final call's decoder covers conv_pre_look_right fewer frames than the F0.
    const int64_t keep = r.finalize ? frames : frames - c.conv_pre_look_right * stft_per_frame;
    s_stft[i].resize(e, keep, stft_ch);
    k.copy_2d(e.s, re.ptr(), bins, s_stft[i].ptr(), stft_ch, keep, bins);
    k.copy_2d(e.s, im.ptr(), bins, s_stft[i].ptr() + bins, stft_ch, keep, bins);
    // The mel the decoder reads: a non-final call drops the F0's look-ahead frames, and
    // conv_pre reads the last conv_pre_look_right of the rest as its look-ahead.
    const int64_t mel_rows = (r.finalize ? r.frames : r.frames - kF0LookAhead) - r.f0_context;
    upload(e,
           r.mel.subspan(static_cast<size_t>(r.f0_context * c.in_channels),
                         static_cast<size_t>(mel_rows * c.in_channels)),
           mel_rows, c.in_channels, mel[i]);
    if (CausalHiftTrace* t = r.trace) {
      t->f0 = f0;
      t->sine_waves = std::move(hs.sine_waves);
      t->uv = std::move(hs.uv);
      t->source = std::move(hs.merged);
      t->stft_real = download(e, re);
      t->stft_imag = download(e, im);
    }
  }

  Batch x, tmp(n), t(n), si, si2, xs(n), r(n);
  {
    std::vector<ConvLayer> pre(n, w.conv_pre);  // the look-ahead: zeros when final
    x.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (batch[i].finalize) pre[i].shape.pad_right = c.conv_pre_look_right;
      Batch one_in(1), one_out(1);
      std::swap(one_in[0], mel[i]);
      pre[i].run(e, one_in, one_out);
      std::swap(x[i], one_out[0]);
      if (batch[i].trace != nullptr) batch[i].trace->conv_pre_out = download(e, x[i]);
    }
  }
  const size_t stages = c.upsample_rates.size();
  const size_t kernels = c.resblock_kernel_sizes.size();
  for (size_t st = 0; st < stages; ++st) {
    // leaky ReLU, nearest ×rate, left-causal conv; the last stage then gains one reflected
    // frame on the left.
    const int64_t rate = c.upsample_rates[st];
    for (size_t i = 0; i < n; ++i) {
      std::vector<int32_t> ids(static_cast<size_t>(x[i].rows * rate));
      for (size_t j = 0; j < ids.size(); ++j) ids[j] = static_cast<int32_t>(j / rate);
      tmp[i].resize(e, static_cast<int64_t>(ids.size()), x[i].ch);
      k.gather_rows(e.s, x[i].ptr(), x[i].ch, ids.data(), static_cast<int64_t>(ids.size()),
                    tmp[i].ptr());
    }
    w.ups[st].run(e, tmp, x, {ActivationKind::LeakyRelu, static_cast<float>(c.lrelu_slope)});
    if (st + 1 == stages) {
      for (size_t i = 0; i < n; ++i) {
        tmp[i].resize(e, x[i].rows + 1, x[i].ch);
        k.pad_rows(e.s, x[i].ptr(), x[i].rows, x[i].ch, tmp[i].ptr(), 1, 0, PadMode::Reflect);
        std::swap(x[i], tmp[i]);
      }
    }
    w.source_downs[st].run(e, s_stft, si);
    w.source_resblocks[st].run(e, si, si2, t);
    for (size_t i = 0; i < n; ++i) {
      if (si2[i].rows != x[i].rows)
        fail("hift: source (", si2[i].rows, ") and upsampled (", x[i].rows,
             ") lengths differ at stage ", st);
      k.axpby(e.s, si2[i].ptr(), x[i].ptr(), static_cast<int64_t>(x[i].size()), 1.0f, 1.0f);
    }
    for (size_t j = 0; j < kernels; ++j) {
      w.resblocks[st * kernels + j].run(e, x, r, t);
      for (size_t i = 0; i < n; ++i) {
        if (j == 0) {
          std::swap(xs[i], r[i]);
        } else {
          k.axpby(e.s, r[i].ptr(), xs[i].ptr(), static_cast<int64_t>(xs[i].size()), 1.0f, 1.0f);
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      k.axpby(e.s, nullptr, xs[i].ptr(), static_cast<int64_t>(xs[i].size()), 0.0f,
              1.0f / static_cast<float>(kernels));
      std::swap(x[i], xs[i]);
    }
  }
  w.conv_post.run(e, x, tmp, {ActivationKind::LeakyRelu, 0.01f}, false);

  for (size_t i = 0; i < n; ++i) {
    const int64_t frames = tmp[i].rows;
    Act re, im, wave;
    re.resize(e, frames, bins);
    im.resize(e, frames, bins);
    k.polar_spectrum(e.s, tmp[i].ptr(), stft_ch, frames, bins, 100.0f, re.ptr(), im.ptr());
    wave.resize(e, c.hop_len * (frames - 1), 1);
    k.istft(e.s, re.ptr(), im.ptr(), frames, c.n_fft, c.hop_len, wave.ptr());
    if (CausalHiftTrace* tr = batch[i].trace) {
      tr->conv_post_out = download(e, tmp[i]);
      tr->istft_out = download(e, wave);
    }
    // A non-final call holds back its last frame's samples (the iSTFT's overlap).
    const int64_t keep = batch[i].finalize ? wave.rows : wave.rows - up;
    k.activation(e.s, wave.ptr(), keep, 1,
                 {ActivationKind::Clamp, 0, nullptr, static_cast<float>(c.audio_limit)});
    std::vector<float> all = download(e, wave);
    all.resize(static_cast<size_t>(keep));
    *batch[i].speech = std::move(all);
  }
  stream->synchronize();
}

double CausalHiftVocoder::flops(int64_t frames) const {
  const HiftConfig& c = config_;
  const Weights& w = *w_;
  double total = 0;
  for (const auto& cv : w.f0_convs)
    total += 2.0 * static_cast<double>(cv.in * cv.out * cv.k * frames);
  total += w.conv_pre.flops(frames);
  int64_t len = frames;
  const size_t kernels = c.resblock_kernel_sizes.size();
  for (size_t st = 0; st < c.upsample_rates.size(); ++st) {
    len *= c.upsample_rates[st];
    total += w.ups[st].flops(len);
    if (st + 1 == c.upsample_rates.size()) len += 1;
    total += w.source_downs[st].flops(len) + w.source_resblocks[st].flops(len);
    for (size_t j = 0; j < kernels; ++j) total += w.resblocks[st * kernels + j].flops(len);
  }
  total += w.conv_post.flops(len);
  return total;
}

}  // namespace cosy
