// Plain-loop reference kernels (double accumulation, torch weight layouts, channels-last
// activations) that the optimised kernels are tested and benchmarked against.
#pragma once

#include <cstdint>
#include <vector>

#include "core/backend.h"

namespace cosy::ref {

// y[m, n] = sum_k x[m, k] w[n, k] + b[n]
std::vector<float> linear(const std::vector<float>& x, int64_t m, int64_t k,
                          const std::vector<float>& w, int64_t n, const float* bias);
// x: [t_in, cin]; w: [cout, cin/groups, kernel]; zero padding; returns [t_out, cout].
std::vector<float> conv1d(const std::vector<float>& x, int64_t t_in, const std::vector<float>& w,
                          const float* bias, const Conv1dArgs& a);
// w: [cin, cout, kernel]
std::vector<float> conv_transpose1d(const std::vector<float>& x, int64_t t_in,
                                    const std::vector<float>& w, const float* bias,
                                    const ConvTranspose1dArgs& a);
float activation(const Activation& act, float x, int64_t channel);
void rms_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps);
void layer_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b,
                float eps);
void softmax(float* x, int64_t rows, int64_t n, bool log);
void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
          const int32_t* positions, float theta, RopePairs pairs = RopePairs::Halves);
// Dense attention for one sequence: q [q_len, H*D], k/v [kv_len, KVH*D]; q_rel with
// a.rel_table adds the relative-position term.
std::vector<float> attention(const float* q, int64_t q_len, int64_t q_pos0, const float* k,
                             const float* v, int64_t kv_len, const float* bias,
                             const AttentionArgs& a, const float* q_rel = nullptr);
void stft(const float* x, int64_t n, int64_t n_fft, int64_t hop, float* re, float* im);
void istft(const float* re, const float* im, int64_t frames, int64_t n_fft, int64_t hop,
           float* out);

}  // namespace cosy::ref
