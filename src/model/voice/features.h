// The three feature extractors of the zero-shot frontend, each as the official code
// computes it:
//  - whisper_log_mel: openai-whisper's log_mel_spectrogram (the speech tokenizer's input);
//  - kaldi_fbank: torchaudio.compliance.kaldi.fbank with CosyVoice's arguments (CAM++'s
//    input, before the per-bin mean is removed);
//  - prompt_mel: Matcha-TTS's mel_spectrogram, the yaml's feat_extractor (the flow's
//    prompt mel).
// Spectra come from FFTW; filterbanks are built here as librosa and torchaudio build them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"

namespace cosy::voice {

// A row-major [rows, cols] float matrix.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;
  float at(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
};

// librosa.filters.mel (Slaney scale and area normalisation): [n_mels, n_fft / 2 + 1].
Matrix slaney_mel_filters(int sample_rate, int n_fft, int n_mels, double fmin, double fmax);
// torchaudio.compliance.kaldi.get_mel_banks with a zero column for the Nyquist bin:
// [n_mels, padded_window / 2 + 1].
Matrix kaldi_mel_banks(int n_mels, int padded_window, double sample_rate, double low_freq,
                       double high_freq);

// [n_mels, F] with F = samples / 160, of 16 kHz audio (more than 200 samples).
Matrix whisper_log_mel(std::span<const float> wave16k, int n_mels);

// [Tf, n_mels] with Tf = 1 + (samples - 400) / 160, of 16 kHz audio (at least 400 samples).
Matrix kaldi_fbank(std::span<const float> wave16k, int n_mels);
// Subtracts each column's mean over the rows (CAM++'s input normalisation).
void subtract_column_means(Matrix& m);

// Matcha's mel_spectrogram (the yaml's feat_extractor): reflect padding of
// (n_fft - hop) / 2, an uncentred STFT with a periodic Hann window, magnitude
// sqrt(re² + im² + 1e-9), Slaney mel filters, natural log clamped at 1e-5.
// [T, num_mels] with T = 1 + (samples + 2 · pad - n_fft) / hop.
Matrix prompt_mel(std::span<const float> wave, const FeatExtractorConfig& spec);

}  // namespace cosy::voice
