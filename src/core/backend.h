// The compute backend interface. Model code holds a Backend& and calls its primitives; it
// never includes a backend's own headers. A backend implements:
//  - memory: device and host allocations;
//  - streams (in-order queues of work) and events, so stages can overlap;
//  - graphs: a recorded sequence of ops for fixed shapes, replayed as one launch (the CPU
//    replays the recorded calls; CUDA graphs and Ascend OM models are the point);
//  - capability queries: supports(op, dtype);
//  - the primitives (kernels) the CosyVoice2 stages need.
// docs/backends.md maps each concept to CUDA and to Ascend ACL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace cosy {

// Bumped whenever a virtual below changes meaning or signature; a backend built against
// another version is refused at creation.
// 2: gated_activation. 3: upload_constant and the data-movement primitives (axpby, add_row,
// copy_2d, fill_2d, pad_rows, gather_rows, to_half, polar_spectrum); activations Abs and
// Clamp. 4: rope's pair layout (RopePairs); gated_add.
inline constexpr int kBackendInterfaceVersion = 4;

enum class DeviceKind { Cpu, Cuda, Ascend };
enum class MemoryKind { Device, Host, HostPinned };

// Stored weight formats for linear and conv layers. F32, F16 and I8 compute in float32 (the
// stored weight is widened; activations stay float32). BF16 also rounds the activations
// to bfloat16 and multiplies in bf16 with float32 sums (on the CPU, AVX512_BF16's dot
// product at twice the float32 FMA rate): it changes the output, and a backend without
// it refuses the format (Backend::supports_weight_format). W8A8 stores I8's weights and
// also quantises the activations to int8 at run time (a scale per 128 values of a row,
// max |x| → 127), summing int8 products exactly in int32 (the CPU's AVX512-VNNI, four
// times the float32 rate): opt-in like BF16, and refused likewise where unsupported.
enum class WeightFormat { F32, F16, I8, BF16, W8A8 };
const char* weight_format_name(WeightFormat f);
// "fp32" | "fp16" | "int8" | "bf16" | "w8a8"
WeightFormat parse_weight_format(const std::string& s);
// Every format, in the order above (for option lists and --help).
const std::vector<WeightFormat>& all_weight_formats();

enum class Op {
  Linear,  // y = x W^T + b (GEMM, and GEMV when M is small)
  Conv1d,  // dilated, strided, grouped, with a fused pre-activation
  ConvTranspose1d,
  Activation,
  Norm,  // RMSNorm, LayerNorm
  Softmax,
  Rope,
  Attention,  // grouped-query over a paged KV cache, masks, additive bias
  Stft,
  Istft,
  Elementwise,  // axpby, add_row, polar_spectrum
  Copy,         // copy_2d, fill_2d, pad_rows, gather_rows, to_half
};
const char* op_name(Op op);

struct BackendInfo {
  std::string name;  // "cpu"
  DeviceKind kind = DeviceKind::Cpu;
  int interface_version = kBackendInterfaceVersion;
  int num_threads = 1;  // compute threads (CPU) or 0
  std::string detail;   // e.g. "AVX2+FMA+F16C, 2 threads"
};

// An event marks a point in a stream; other streams (or the host) can wait on it.
class Event {
 public:
  virtual ~Event() = default;
  virtual void synchronize() = 0;  // host waits
  virtual bool query() = 0;        // reached?
};

// An in-order queue of work. All primitives take the stream they run on.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void record(Event& event) = 0;
  virtual void wait(Event& event) = 0;  // later work waits for `event`
  virtual void synchronize() = 0;       // host waits for all queued work
};

// A recorded op sequence for fixed shapes and buffers, replayed as one launch.
class Graph {
 public:
  virtual ~Graph() = default;
  virtual void launch(Stream& stream) = 0;
};

// Weights converted once, at load time, to the layout and format a backend's kernels read.
// Opaque to the model; shared read-only by every stream.
class PreparedWeight {
 public:
  virtual ~PreparedWeight() = default;
  virtual int64_t out_features() const = 0;  // N (linear) or C_out (conv)
  virtual int64_t in_features() const = 0;   // K = C_in/groups * kernel for convs
  virtual WeightFormat format() const = 0;
  virtual size_t bytes() const = 0;
};

enum class ActivationKind {
  None,
  LeakyRelu,
  Elu,
  Snake,
  Silu,
  GeluTanh,
  GeluErf,
  Tanh,
  Mish,
  Abs,
  Clamp,  // to [-bound, bound]
};

// An activation; Snake reads per-channel alpha (x + 1/(alpha+1e-9) * sin²(alpha x)).
struct Activation {
  ActivationKind kind = ActivationKind::None;
  float slope = 0.01f;           // LeakyRelu
  const float* alpha = nullptr;  // Snake, one per channel
  float bound = 1.0f;            // Clamp
};

// Activations are channels-last: a sequence of T steps is a row-major [T, C] matrix.
// A batched call takes several independent sequences ("segments"), one per stream.
struct Segment {
  const float* x = nullptr;  // [t_in, ld_x] rows; channels at x[t * ld_x + c]
  int64_t t_in = 0;
  float* y = nullptr;          // [t_out, ld_y]
  int64_t ld_x = 0, ld_y = 0;  // 0 means packed (the channel count)
};

struct LinearArgs {
  const PreparedWeight* weight = nullptr;  // [N, K]
  const float* bias = nullptr;             // [N] or null
  bool accumulate = false;                 // y += x W^T + b (fused residual)
};

struct Conv1dArgs {
  const PreparedWeight* weight = nullptr;  // torch [C_out, C_in/groups, kernel]
  const float* bias = nullptr;
  int64_t in_channels = 0, out_channels = 0, kernel = 1, stride = 1, dilation = 1;
  int64_t groups = 1;
  int64_t pad_left = 0, pad_right = 0;  // zero padding (causal: pad_left = (k-1)*d)
  Activation pre;                       // applied to the input before the conv
  bool accumulate = false;              // y += conv(x)
  int64_t out_length(int64_t t_in) const {
    return (t_in + pad_left + pad_right - dilation * (kernel - 1) - 1) / stride + 1;
  }
};

struct ConvTranspose1dArgs {
  const PreparedWeight* weight = nullptr;  // torch [C_in, C_out, kernel]
  const float* bias = nullptr;
  int64_t in_channels = 0, out_channels = 0, kernel = 1, stride = 1, padding = 0;
  Activation pre;
  int64_t out_length(int64_t t_in) const { return (t_in - 1) * stride - 2 * padding + kernel; }
};

// Attention over a KV cache: either paged (keys/values in fixed-size blocks from a shared
// pool, a block table per sequence) or dense rows the caller owns (k/v). One call serves
// many sequences of different lengths (continuous batching).
struct AttentionSeq {
  const float* q = nullptr;  // [q_len, num_heads * head_dim] (ld_q)
  int64_t q_len = 0;
  int64_t q_pos0 = 0;                    // absolute position of the first query
  const int32_t* block_table = nullptr;  // paged; null: dense rows at k/v
  int64_t kv_len = 0;                    // keys cached for this sequence (queries included)
  const float* bias = nullptr;           // optional additive [num_heads, q_len, kv_len]
  float* out = nullptr;                  // [q_len, num_heads * head_dim] (ld_out)
  const float* k = nullptr;              // dense keys [kv_len, ld_kv] when block_table is null
  const float* v = nullptr;
  // Dense keys may come in two pieces: rows [0, shared_len) at k_shared/v_shared (a prefix
  // that many sequences read, e.g. a voice's cached prompt), rows [shared_len, kv_len) at
  // k/v, whose first row is key shared_len. Same row stride.
  const float* k_shared = nullptr;
  const float* v_shared = nullptr;
  int64_t shared_len = 0;
  // With kv_half the dense keys/values are IEEE half floats in the same layout, read from
  // k16/v16 (and k16_shared/v16_shared) instead: a stream's cache in half the memory. Only
  // for sequences without a relative term or bias, head size a multiple of 16.
  bool kv_half = false;
  const uint16_t* k16 = nullptr;
  const uint16_t* v16 = nullptr;
  const uint16_t* k16_shared = nullptr;
  const uint16_t* v16_shared = nullptr;
  // Relative-position queries (the conformer's q + pos_bias_v), [q_len, ld_q]; with
  // AttentionArgs::rel_table the score gains q_rel · rel_table[query_pos - key_pos].
  const float* q_rel = nullptr;
};
enum class MaskKind { None, Causal, ChunkCausal };
// Which channels rotary embedding rotates together: channel i with i + head_dim/2 (Qwen2,
// Hugging Face's rotate_half), or channels 2i and 2i+1 (x-transformers, CosyVoice3's DiT).
enum class RopePairs { Halves, Adjacent };
// How pad_rows fills the rows before and after a sequence (torch's F.pad modes).
enum class PadMode { Zero, Reflect, Replicate };
struct AttentionArgs {
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t ld_q = 0, ld_out = 0;  // 0: num_heads * head_dim
  float scale = 0;               // 0: 1/sqrt(head_dim)
  MaskKind mask = MaskKind::None;
  int64_t chunk = 0;              // ChunkCausal: key j visible to query i iff j < (i/chunk+1)*chunk
  int64_t left_chunks = -1;       // ChunkCausal: visible chunks to the left (<0: all)
  const float* k_pool = nullptr;  // [blocks][block_size][num_kv_heads][head_dim]
  const float* v_pool = nullptr;
  int64_t block_size = 0;
  int64_t ld_kv = 0;  // dense keys/values: row stride (0: num_kv_heads * head_dim)
  // Transformer-XL relative positions: row rel_zero + d holds the projected encoding of
  // distance d = query_pos - key_pos, [rows, num_heads * head_dim]. The score is
  // scale * (q·k + q_rel·rel), as espnet's RelPositionMultiHeadedAttention computes it.
  const float* rel_table = nullptr;
  int64_t rel_zero = 0;
  // Q·Kᵀ and P·V with bf16 products and float32 sums (the CPU's AVX512_BF16, as
  // WeightFormat::BF16): a bf16 flow's attention. Changes the output; the softmax stays
  // float32. Only for sequences without a relative term or bias.
  bool bf16 = false;
};

// The kernels. Every pointer is memory of this backend; every call is queued on `stream`.
class Primitives {
 public:
  virtual ~Primitives() = default;

  // [rows(out), K] × [N, K]^T → [rows, N] over segments (t_in rows each).
  virtual void linear(Stream& s, std::span<const Segment> segs, const LinearArgs& a) = 0;
  virtual void conv1d(Stream& s, std::span<const Segment> segs, const Conv1dArgs& a) = 0;
  virtual void conv_transpose1d(Stream& s, std::span<const Segment> segs,
                                const ConvTranspose1dArgs& a) = 0;
  // In place over [rows, channels].
  virtual void activation(Stream& s, float* x, int64_t rows, int64_t channels,
                          const Activation& act) = 0;
  // Gated activations (SwiGLU): y[r, c] = act(x[r, c]) * x[r, channels + c], where each
  // x row holds the gate half then the up half (2 * channels floats); y is [rows, channels].
  virtual void gated_activation(Stream& s, const float* x, float* y, int64_t rows, int64_t channels,
                                const Activation& act) = 0;
  virtual void rms_norm(Stream& s, const float* x, float* y, int64_t rows, int64_t dim,
                        const float* weight, float eps) = 0;
  virtual void layer_norm(Stream& s, const float* x, float* y, int64_t rows, int64_t dim,
                          const float* weight, const float* bias, float eps) = 0;
  virtual void softmax(Stream& s, float* x, int64_t rows, int64_t n, bool log) = 0;
  // Rotary embedding in place on [rows, heads, head_dim], row i at absolute position
  // positions[i]; frequency j is theta^(-2j/head_dim), applied to the pair `pairs` names.
  virtual void rope(Stream& s, float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
                    const int32_t* positions, float theta, RopePairs pairs) = 0;
  virtual void attention(Stream& s, std::span<const AttentionSeq> seqs, const AttentionArgs& a) = 0;
  // torch.stft(center=True, reflect, periodic Hann, onesided) of [n] samples into
  // [frames, n_fft/2+1] real and imaginary parts (channels-last).
  virtual void stft(Stream& s, const float* x, int64_t n, int64_t n_fft, int64_t hop, float* real,
                    float* imag) = 0;
  // torch.istft of [frames, n_fft/2+1] (real, imag) → hop*(frames-1) samples.
  virtual void istft(Stream& s, const float* real, const float* imag, int64_t frames, int64_t n_fft,
                     int64_t hop, float* out) = 0;

  // Data movement and element-wise arithmetic, so that model code never touches backend
  // memory itself. Row strides (ld) are in elements.
  // y = alpha * x + beta * y over n values; with alpha == 0, x is not read (may be null).
  virtual void axpby(Stream& s, const float* x, float* y, int64_t n, float alpha, float beta) = 0;
  // y[r, c] = x[r, c] + row[c] over [rows, cols] (a broadcast bias); y may equal x.
  virtual void add_row(Stream& s, const float* x, const float* row, float* y, int64_t rows,
                       int64_t cols) = 0;
  // y[r, c] += gate[c] * x[r, c] over [rows, cols] (a gated residual, as AdaLN-zero's).
  virtual void gated_add(Stream& s, const float* x, const float* gate, float* y, int64_t rows,
                         int64_t cols) = 0;
  // dst[r, c] = src[r, c] for a [rows, cols] block; ld_src = 0 repeats src's one row in
  // every row (a broadcast). Regions must not overlap.
  virtual void copy_2d(Stream& s, const float* src, int64_t ld_src, float* dst, int64_t ld_dst,
                       int64_t rows, int64_t cols) = 0;
  // y = x ([rows, cols]) with `left` rows before and `right` after, [left + rows + right,
  // cols]: zeros, the mirror image without the edge row (reflect, pads < rows) or copies of
  // the edge row (replicate). y must not overlap x.
  virtual void pad_rows(Stream& s, const float* x, int64_t rows, int64_t cols, float* y,
                        int64_t left, int64_t right, PadMode mode) = 0;
  // dst[r, c] = value over a [rows, cols] block.
  virtual void fill_2d(Stream& s, float* dst, int64_t ld_dst, int64_t rows, int64_t cols,
                       float value) = 0;
  // dst row i = table row ids[i] ([n, cols], packed); ids are host memory (launch
  // arguments, like every index list), each in [0, table_rows).
  virtual void gather_rows(Stream& s, const float* table, int64_t cols, const int32_t* ids,
                           int64_t n, float* dst) = 0;
  // IEEE half of n floats (a stream's cached keys kept in half precision).
  virtual void to_half(Stream& s, const float* x, uint16_t* y, int64_t n) = 0;
  // HiFT's spectrum head: from [frames, ld_x] rows holding `bins` log-magnitudes then
  // `bins` phase logits, magnitude m = min(exp(x), max_magnitude) and phase p = sin(x'),
  // real = m cos p and imag = m sin p, each [frames, bins].
  virtual void polar_spectrum(Stream& s, const float* x, int64_t ld_x, int64_t frames, int64_t bins,
                              float max_magnitude, float* real, float* imag) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendInfo info() const = 0;
  virtual bool supports(Op op, DType dtype) const = 0;
  virtual bool supports_weight_format(WeightFormat f) const = 0;

  virtual void* allocate(size_t bytes, MemoryKind kind) = 0;
  virtual void deallocate(void* p, MemoryKind kind) = 0;
  // Between any two memories of this backend (host ↔ device included).
  virtual void copy(Stream& s, void* dst, const void* src, size_t bytes) = 0;
  // Read-only data the kernels will read for the life of the returned handle: weight
  // vectors and embedding tables. `owner` keeps `host` alive. A backend whose kernels read
  // host memory may return a view of it (the CPU does: zero copy); a device copies once.
  virtual std::shared_ptr<const void> upload_constant(const void* host, size_t bytes,
                                                      std::shared_ptr<const void> owner) = 0;

  virtual std::unique_ptr<Stream> create_stream() = 0;
  virtual std::unique_ptr<Event> create_event() = 0;
  // Records what `record` queues on `stream` into a graph for replay with the same shapes
  // and buffers.
  virtual std::unique_ptr<Graph> capture(Stream& stream,
                                         const std::function<void(Stream&)>& record) = 0;

  // Converts a float32 weight once for this backend. Linear: w is [N, K]. Conv1d: w is
  // torch's [C_out, C_in/groups, kernel]. ConvTranspose1d: torch's [C_in, C_out, kernel].
  virtual std::shared_ptr<const PreparedWeight> prepare_linear(const float* w, int64_t n, int64_t k,
                                                               WeightFormat f) = 0;
  virtual std::shared_ptr<const PreparedWeight> prepare_conv1d(const float* w, int64_t out_channels,
                                                               int64_t in_per_group, int64_t kernel,
                                                               int64_t groups, WeightFormat f) = 0;
  virtual std::shared_ptr<const PreparedWeight> prepare_conv_transpose1d(const float* w,
                                                                         int64_t in_channels,
                                                                         int64_t out_channels,
                                                                         int64_t kernel,
                                                                         WeightFormat f) = 0;

  virtual Primitives& primitives() = 0;
};

}  // namespace cosy
