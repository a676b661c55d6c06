#include "model/voice/features.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

#include "core/error.h"

namespace cosy::voice {

namespace {

// A real-to-complex FFT of one size. FFTW's planner is not thread-safe, so plans are
// made under a lock and cached; executing a plan on other arrays is (fftw_execute_dft_r2c).
class RealFft {
 public:
  explicit RealFft(int n) : n_(n) {
    std::lock_guard<std::mutex> lock(planner_mutex());
    double* in = fftw_alloc_real(static_cast<size_t>(n));
    fftw_complex* out = fftw_alloc_complex(static_cast<size_t>(n / 2 + 1));
    plan_ = fftw_plan_dft_r2c_1d(n, in, out, FFTW_ESTIMATE);
    fftw_free(in);
    fftw_free(out);
    if (plan_ == nullptr) fail("FFTW could not plan a ", n, "-point FFT");
  }
  ~RealFft() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftw_destroy_plan(plan_);
  }
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  // |X[k]|² for k = 0 .. n/2 of `frame` (n values).
  void power(const double* frame, std::vector<double>& out) const {
    Buffers& b = buffers();
    std::copy(frame, frame + n_, b.in);
    fftw_execute_dft_r2c(plan_, b.in, b.out);
    out.resize(static_cast<size_t>(n_ / 2 + 1));
    for (int k = 0; k <= n_ / 2; ++k)
      out[k] = b.out[k][0] * b.out[k][0] + b.out[k][1] * b.out[k][1];
  }

  static const RealFft& of_size(int n) {
    static std::mutex m;
    static std::map<int, std::unique_ptr<RealFft>> cache;
    std::lock_guard<std::mutex> lock(m);
    auto& slot = cache[n];
    if (!slot) slot = std::make_unique<RealFft>(n);
    return *slot;
  }

 private:
  struct Buffers {  // FFTW-aligned scratch, one per thread and size
    double* in = nullptr;
    fftw_complex* out = nullptr;
    ~Buffers() {
      fftw_free(in);
      fftw_free(out);
    }
  };
  Buffers& buffers() const {
    thread_local std::map<int, Buffers> per_size;
    Buffers& b = per_size[n_];
    if (b.in == nullptr) {
      b.in = fftw_alloc_real(static_cast<size_t>(n_));
      b.out = fftw_alloc_complex(static_cast<size_t>(n_ / 2 + 1));
    }
    return b;
  }
  static std::mutex& planner_mutex() {
    static std::mutex m;
    return m;
  }
  int n_;
  fftw_plan plan_ = nullptr;
};

double hz_to_slaney(double f) {
  constexpr double f_sp = 200.0 / 3.0;
  constexpr double min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return f >= min_log_hz ? min_log_mel + std::log(f / min_log_hz) / logstep : f / f_sp;
}

double slaney_to_hz(double m) {
  constexpr double f_sp = 200.0 / 3.0;
  constexpr double min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m;
}

std::vector<double> periodic_hann(int n) {
  std::vector<double> w(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) w[i] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n);
  return w;
}

// Index of a reflect-padded signal (no edge repeat), as torch's reflect padding.
int64_t reflect(int64_t i, int64_t n) {
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// The filterbank's energy in each of its bands: filters [bands, bins] · spectrum [bins].
double band_energy(const Matrix& filters, int64_t band, const std::vector<double>& spectrum) {
  double e = 0;
  for (int64_t k = 0; k < filters.cols; ++k)
    e += static_cast<double>(filters.at(band, k)) * spectrum[k];
  return e;
}

}  // namespace

Matrix slaney_mel_filters(int sample_rate, int n_fft, int n_mels, double fmin, double fmax) {
  const int bins = n_fft / 2 + 1;
  std::vector<double> fftfreqs(static_cast<size_t>(bins));
  for (int k = 0; k < bins; ++k)
    fftfreqs[k] = static_cast<double>(sample_rate) / 2.0 * k / (bins - 1);
  const double mlo = hz_to_slaney(fmin);
  const double mhi = hz_to_slaney(fmax);
  std::vector<double> mel_f(static_cast<size_t>(n_mels + 2));
  for (int i = 0; i < n_mels + 2; ++i)
    mel_f[i] = slaney_to_hz(mlo + (mhi - mlo) * i / (n_mels + 1));
  Matrix m{n_mels, bins, std::vector<float>(static_cast<size_t>(n_mels * bins))};
  for (int i = 0; i < n_mels; ++i) {
    const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
    for (int k = 0; k < bins; ++k) {
      const double lower = -(mel_f[i] - fftfreqs[k]) / (mel_f[i + 1] - mel_f[i]);
      const double upper = (mel_f[i + 2] - fftfreqs[k]) / (mel_f[i + 2] - mel_f[i + 1]);
      m.data[i * bins + k] = static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return m;
}

Matrix kaldi_mel_banks(int n_mels, int padded_window, double sample_rate, double low_freq,
                       double high_freq) {
  // As torchaudio computes it: the edges and step as Python floats (double), the
  // per-bin values as float32 tensor arithmetic on them.
  auto mel_double = [](double f) { return 1127.0 * std::log(1.0 + f / 700.0); };
  auto mel_float = [](float f) { return 1127.0f * std::log(1.0f + f / 700.0f); };
  const int fft_bins = padded_window / 2;
  const double nyquist = sample_rate / 2.0;
  const double high = high_freq <= 0 ? high_freq + nyquist : high_freq;
  const auto bin_width = static_cast<float>(sample_rate / padded_window);
  const double mel_low = mel_double(low_freq);
  const double delta = (mel_double(high) - mel_low) / (n_mels + 1);
  const auto low_f = static_cast<float>(mel_low);
  const auto delta_f = static_cast<float>(delta);
  Matrix m{n_mels, fft_bins + 1,
           std::vector<float>(static_cast<size_t>(n_mels * (fft_bins + 1)), 0.0f)};
  for (int b = 0; b < n_mels; ++b) {
    const float left = low_f + static_cast<float>(b) * delta_f;
    const float center = low_f + (static_cast<float>(b) + 1.0f) * delta_f;
    const float right = low_f + (static_cast<float>(b) + 2.0f) * delta_f;
    for (int k = 0; k < fft_bins; ++k) {
      const float mk = mel_float(bin_width * static_cast<float>(k));
      const float up = (mk - left) / (center - left);
      const float down = (right - mk) / (right - center);
      m.data[b * (fft_bins + 1) + k] = std::max(0.0f, std::min(up, down));
    }
  }
  return m;
}

Matrix whisper_log_mel(std::span<const float> wave16k, int n_mels) {
  constexpr int kFft = 400;
  constexpr int kHop = 160;
  const int64_t n = static_cast<int64_t>(wave16k.size());
  if (n <= kFft / 2)
    fail("whisper features need more than ", kFft / 2, " samples at 16 kHz, got ", n);
  const int64_t frames = n / kHop;  // centred STFT, last frame dropped
  static const Matrix filters = slaney_mel_filters(16000, kFft, 128, 0.0, 8000.0);
  const Matrix other =
      n_mels == 128 ? Matrix{} : slaney_mel_filters(16000, kFft, n_mels, 0.0, 8000.0);
  const Matrix& fb = n_mels == 128 ? filters : other;
  const RealFft& fft = RealFft::of_size(kFft);
  const std::vector<double> window = periodic_hann(kFft);
  Matrix out{n_mels, frames, std::vector<float>(static_cast<size_t>(n_mels * frames))};
  std::vector<double> frame(kFft);
  std::vector<double> power;
  double max_log = -std::numeric_limits<double>::infinity();
  std::vector<double> logs(static_cast<size_t>(n_mels * frames));
  for (int64_t t = 0; t < frames; ++t) {
    for (int i = 0; i < kFft; ++i)
      frame[i] = wave16k[reflect(t * kHop + i - kFft / 2, n)] * window[i];
    fft.power(frame.data(), power);
    for (int m = 0; m < n_mels; ++m) {
      const double l = std::log10(std::max(band_energy(fb, m, power), 1e-10));
      logs[m * frames + t] = l;
      max_log = std::max(max_log, l);
    }
  }
  for (size_t i = 0; i < logs.size(); ++i)
    out.data[i] = static_cast<float>((std::max(logs[i], max_log - 8.0) + 4.0) / 4.0);
  return out;
}

Matrix kaldi_fbank(std::span<const float> wave16k, int n_mels) {
  constexpr int kWindow = 400;
  constexpr int kShift = 160;
  constexpr int kPadded = 512;
  const int64_t n = static_cast<int64_t>(wave16k.size());
  if (n < kWindow) fail("fbank features need at least ", kWindow, " samples at 16 kHz, got ", n);
  const int64_t frames = 1 + (n - kWindow) / kShift;  // snip_edges
  const Matrix banks = kaldi_mel_banks(n_mels, kPadded, 16000.0, 20.0, 0.0);
  std::vector<double> povey(kWindow);
  for (int i = 0; i < kWindow; ++i) {
    povey[i] = std::pow(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / (kWindow - 1)), 0.85);
  }
  const RealFft& fft = RealFft::of_size(kPadded);
  const double eps = std::numeric_limits<float>::epsilon();
  Matrix out{frames, n_mels, std::vector<float>(static_cast<size_t>(frames * n_mels))};
  std::vector<double> x(kPadded, 0.0);
  std::vector<double> power;
  for (int64_t t = 0; t < frames; ++t) {
    const float* src = wave16k.data() + t * kShift;
    double mean = 0;
    for (int i = 0; i < kWindow; ++i) mean += src[i];
    mean /= kWindow;
    std::vector<double> d(kWindow);
    for (int i = 0; i < kWindow; ++i) d[i] = src[i] - mean;
    for (int i = kWindow - 1; i >= 0; --i) x[i] = (d[i] - 0.97 * d[i > 0 ? i - 1 : 0]) * povey[i];
    std::fill(x.begin() + kWindow, x.end(), 0.0);
    fft.power(x.data(), power);
    for (int m = 0; m < n_mels; ++m) {
      out.data[t * n_mels + m] =
          static_cast<float>(std::log(std::max(band_energy(banks, m, power), eps)));
    }
  }
  return out;
}

void subtract_column_means(Matrix& m) {
  for (int64_t c = 0; c < m.cols; ++c) {
    double mean = 0;
    for (int64_t r = 0; r < m.rows; ++r) mean += m.at(r, c);
    mean /= static_cast<double>(std::max<int64_t>(m.rows, 1));
    for (int64_t r = 0; r < m.rows; ++r)
      m.data[r * m.cols + c] = static_cast<float>(m.at(r, c) - mean);
  }
}

Matrix prompt_mel(std::span<const float> wave, const FeatExtractorConfig& config) {
  config.validate();
  const auto n_fft = static_cast<int>(config.n_fft);
  const int64_t hop = config.hop_size;
  const int64_t mels = config.num_mels;
  const int64_t n = static_cast<int64_t>(wave.size());
  const int64_t pad = (n_fft - hop) / 2;
  if (n <= pad) fail("the prompt mel needs more than ", pad, " samples, got ", n);
  const int64_t padded = n + 2 * pad;
  if (padded < n_fft) return Matrix{0, mels, {}};
  const int64_t frames = 1 + (padded - n_fft) / hop;
  const Matrix fb = slaney_mel_filters(static_cast<int>(config.sampling_rate), n_fft,
                                       static_cast<int>(mels), config.fmin, config.fmax);
  // torch.stft centres a shorter window inside the n_fft frame.
  std::vector<double> window(static_cast<size_t>(n_fft), 0.0);
  const std::vector<double> hann = periodic_hann(static_cast<int>(config.win_size));
  const int64_t offset = (n_fft - config.win_size) / 2;
  std::copy(hann.begin(), hann.end(), window.begin() + offset);
  const RealFft& fft = RealFft::of_size(n_fft);
  Matrix out{frames, mels, std::vector<float>(static_cast<size_t>(frames * mels))};
  std::vector<double> frame(static_cast<size_t>(n_fft));
  std::vector<double> power;
  for (int64_t t = 0; t < frames; ++t) {
    for (int i = 0; i < n_fft; ++i) frame[i] = wave[reflect(t * hop + i - pad, n)] * window[i];
    fft.power(frame.data(), power);
    for (double& p : power) p = std::sqrt(p + 1e-9);  // magnitude, as Matcha takes it
    for (int64_t m = 0; m < mels; ++m) {
      out.data[t * mels + m] =
          static_cast<float>(std::log(std::max(band_energy(fb, m, power), 1e-5)));
    }
  }
  return out;
}

}  // namespace cosy::voice
