// torch.stft / torch.istft for HiFT's tiny transforms (n_fft 16, hop 4): a direct DFT with
// precomputed twiddles is faster than an FFT at this size, and exact to float rounding.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace cosy::cpu {

// center=True with reflect padding, periodic Hann window, onesided, not normalised.
// Output frames = 1 + n / hop, each n_fft/2+1 bins: real[f * bins + k], imag likewise.
int64_t stft_frames(int64_t n, int64_t hop);
void stft(ThreadPool& pool, const float* x, int64_t n, int64_t n_fft, int64_t hop, float* real,
          float* imag);
// Inverse (center=True): window, overlap-add, divide by the summed squared window, trim
// n_fft/2 at both ends → hop * (frames - 1) samples.
void istft(ThreadPool& pool, const float* real, const float* imag, int64_t frames, int64_t n_fft,
           int64_t hop, float* out);

}  // namespace cosy::cpu
