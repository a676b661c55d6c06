#include "model/spectral_distance.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace cosy {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kFloorDb = 80;

// FFTW's planner is not thread-safe.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

// |STFT| (frames x bins), center=False: every frame lies inside the signal.
std::vector<double> magnitudes(std::span<const float> x, int n_fft, int hop, int64_t& frames) {
  const int bins = n_fft / 2 + 1;
  frames = x.size() < size_t(n_fft) ? 0 : 1 + (int64_t(x.size()) - n_fft) / hop;
  std::vector<double> out(size_t(frames * bins));
  double* in = fftw_alloc_real(size_t(n_fft));
  fftw_complex* spec = fftw_alloc_complex(size_t(bins));
  fftw_plan plan;
  {
    std::lock_guard lock(planner_mutex());
    plan = fftw_plan_dft_r2c_1d(n_fft, in, spec, FFTW_ESTIMATE);
  }
  for (int64_t f = 0; f < frames; ++f) {
    for (int i = 0; i < n_fft; ++i) {
      const double w = 0.5 - 0.5 * std::cos(2 * kPi * i / n_fft);  // periodic Hann
      in[i] = w * x[size_t(f * hop + i)];
    }
    fftw_execute(plan);
    for (int k = 0; k < bins; ++k) out[size_t(f * bins + k)] = std::hypot(spec[k][0], spec[k][1]);
  }
  {
    std::lock_guard lock(planner_mutex());
    fftw_destroy_plan(plan);
  }
  fftw_free(spec);
  fftw_free(in);
  return out;
}

}  // namespace

std::string SpectralDistance::str() const {
  std::ostringstream s;
  s << "spectral convergence " << convergence << ", log-magnitude distance " << log_magnitude_db
    << " dB";
  return s.str();
}

SpectralDistance spectral_distance(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) throw std::invalid_argument("spectral_distance: lengths differ");
  SpectralDistance d;
  for (const int n_fft : {512, 1024, 2048}) {
    int64_t frames = 0;
    const auto g = magnitudes(got, n_fft, n_fft / 4, frames);
    const auto w = magnitudes(want, n_fft, n_fft / 4, frames);
    if (frames == 0) continue;
    double diff2 = 0, ref2 = 0, peak = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      diff2 += (g[i] - w[i]) * (g[i] - w[i]);
      ref2 += w[i] * w[i];
      peak = std::max(peak, w[i]);
    }
    const double floor = peak * std::pow(10.0, -kFloorDb / 20);
    double log_sum = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      log_sum += std::fabs(20 * std::log10(std::max(g[i], floor)) -
                           20 * std::log10(std::max(w[i], floor)));
    }
    d.convergence = std::max(d.convergence, ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2));
    d.log_magnitude_db = std::max(d.log_magnitude_db, log_sum / double(w.size()));
  }
  return d;
}

double snr_db(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) throw std::invalid_argument("snr_db: lengths differ");
  double signal = 0, error = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    signal += double(want[i]) * want[i];
    error += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
  }
  if (error == 0) return INFINITY;
  return 10 * std::log10(signal / error);
}

}  // namespace cosy
