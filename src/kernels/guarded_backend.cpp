#include "kernels/guarded_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/error.h"

namespace cosy {

namespace {

// Backend memory is a shared-memory file mapped twice: the addresses handed out (the
// "device" view) are mapped with no access at all, and the kernels run on the same bytes
// through a second, read-write view. Each call translates its pointers from one view to
// the other, so nothing is toggled per call and calls run concurrently. Pages are handed
// out first-fit; freed ranges coalesce.
class GuardedArena {
 public:
  static constexpr size_t kReserve = size_t(16) << 30;  // address space; pages come on use

  GuardedArena() : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
    fd_ = memfd_create("cosy-guarded", MFD_CLOEXEC);
    if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(kReserve)) != 0)
      fail("guarded backend: cannot create its memory file");
    void* dev = mmap(nullptr, kReserve, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
    void* alias =
        mmap(nullptr, kReserve, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
    if (dev == MAP_FAILED || alias == MAP_FAILED) fail("guarded backend: cannot map its memory");
    base_ = static_cast<std::byte*>(dev);
    alias_ = static_cast<std::byte*>(alias);
  }
  ~GuardedArena() {
    munmap(base_, kReserve);
    munmap(alias_, kReserve);
    close(fd_);
  }
  GuardedArena(const GuardedArena&) = delete;
  GuardedArena& operator=(const GuardedArena&) = delete;

  void* allocate(size_t bytes) {
    std::lock_guard lock(mutex_);
    const size_t n = (std::max<size_t>(bytes, 1) + page_ - 1) / page_ * page_;
    size_t at = 0;
    auto it = free_.begin();
    while (it != free_.end() && it->second < n) ++it;
    if (it != free_.end()) {
      at = it->first;
      const size_t rest = it->second - n;
      free_.erase(it);
      if (rest > 0) free_[at + n] = rest;
    } else {
      if (high_ + n > kReserve) throw std::bad_alloc();
      at = high_;
      high_ += n;
    }
    live_[at] = n;
    ++allocations_;
    return base_ + at;
  }

  GuardedMemoryStats stats() {
    std::lock_guard lock(mutex_);
    return {allocations_, static_cast<int64_t>(live_.size())};
  }

  void deallocate(void* p) {
    std::lock_guard lock(mutex_);
    const auto at = static_cast<size_t>(static_cast<std::byte*>(p) - base_);
    const auto it = live_.find(at);
    if (it == live_.end()) fail("guarded backend: freeing memory it did not allocate");
    size_t start = at, size = it->second;
    live_.erase(it);
    auto next = free_.lower_bound(start);
    if (next != free_.end() && next->first == start + size) {
      size += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == start) {
        start = prev->first;
        size += prev->second;
        free_.erase(prev);
      }
    }
    free_[start] = size;
  }

  bool contains(const void* p) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base_ && b < base_ + kReserve;
  }
  // The kernels' view of a pointer: backend memory through the read-write alias, anything
  // else (host memory) as it is.
  template <typename T>
  T* kernel_view(T* p) const {
    if (p == nullptr || !contains(p)) return p;
    const auto off = reinterpret_cast<const std::byte*>(p) - base_;
    return reinterpret_cast<T*>(const_cast<std::byte*>(alias_ + off));
  }

 private:
  size_t page_;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::byte* alias_ = nullptr;
  std::mutex mutex_;
  size_t high_ = 0;
  int64_t allocations_ = 0;
  std::map<size_t, size_t> free_;            // offset → bytes
  std::unordered_map<size_t, size_t> live_;  // offset → bytes
};

class GuardedPrimitives final : public Primitives {
 public:
  GuardedPrimitives(Primitives& inner, GuardedArena& arena) : in_(inner), arena_(arena) {}

  void linear(Stream& s, std::span<const Segment> segs, const LinearArgs& a) override {
    LinearArgs t = a;
    t.bias = dev("linear", a.bias, "bias");
    in_.linear(s, segments("linear", segs), t);
  }
  void conv1d(Stream& s, std::span<const Segment> segs, const Conv1dArgs& a) override {
    in_.conv1d(s, segments("conv1d", segs), conv_args("conv1d", a));
  }
  void conv_transpose1d(Stream& s, std::span<const Segment> segs,
                        const ConvTranspose1dArgs& a) override {
    in_.conv_transpose1d(s, segments("conv_transpose1d", segs), conv_args("conv_transpose1d", a));
  }
  void activation(Stream& s, float* x, int64_t rows, int64_t channels,
                  const Activation& a) override {
    in_.activation(s, dev("activation", x, "x"), rows, channels, act("activation", a));
  }
  void gated_activation(Stream& s, const float* x, float* y, int64_t rows, int64_t channels,
                        const Activation& a) override {
    in_.gated_activation(s, dev("gated_activation", x, "x"), dev("gated_activation", y, "y"), rows,
                         channels, act("gated_activation", a));
  }
  void rms_norm(Stream& s, const float* x, float* y, int64_t rows, int64_t dim, const float* w,
                float eps) override {
    in_.rms_norm(s, dev("rms_norm", x, "x"), dev("rms_norm", y, "y"), rows, dim,
                 dev("rms_norm", w, "weight"), eps);
  }
  void layer_norm(Stream& s, const float* x, float* y, int64_t rows, int64_t dim, const float* w,
                  const float* b, float eps) override {
    in_.layer_norm(s, dev("layer_norm", x, "x"), dev("layer_norm", y, "y"), rows, dim,
                   dev("layer_norm", w, "weight"), dev("layer_norm", b, "bias"), eps);
  }
  void softmax(Stream& s, float* x, int64_t rows, int64_t n, bool log) override {
    in_.softmax(s, dev("softmax", x, "x"), rows, n, log);
  }
  void rope(Stream& s, float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
            const int32_t* positions, float theta, RopePairs pairs) override {
    in_.rope(s, dev("rope", x, "x"), rows, heads, head_dim, ld, positions, theta, pairs);
  }
  void attention(Stream& s, std::span<const AttentionSeq> seqs, const AttentionArgs& a) override {
    const char* op = "attention";
    std::vector<AttentionSeq> t(seqs.begin(), seqs.end());
    for (AttentionSeq& q : t) {
      q.q = dev(op, q.q, "queries");
      q.out = dev(op, q.out, "output");
      q.k = dev(op, q.k, "keys");
      q.v = dev(op, q.v, "values");
      q.k_shared = dev(op, q.k_shared, "shared keys");
      q.v_shared = dev(op, q.v_shared, "shared values");
      q.k16 = dev(op, q.k16, "half keys");
      q.v16 = dev(op, q.v16, "half values");
      q.k16_shared = dev(op, q.k16_shared, "shared half keys");
      q.v16_shared = dev(op, q.v16_shared, "shared half values");
      q.q_rel = dev(op, q.q_rel, "relative queries");
      q.bias = dev(op, q.bias, "bias");
    }
    AttentionArgs args = a;
    args.k_pool = dev(op, a.k_pool, "key pool");
    args.v_pool = dev(op, a.v_pool, "value pool");
    args.rel_table = dev(op, a.rel_table, "relative table");
    in_.attention(s, t, args);
  }
  void stft(Stream& s, const float* x, int64_t n, int64_t n_fft, int64_t hop, float* re,
            float* im) override {
    in_.stft(s, dev("stft", x, "x"), n, n_fft, hop, dev("stft", re, "real"),
             dev("stft", im, "imag"));
  }
  void istft(Stream& s, const float* re, const float* im, int64_t frames, int64_t n_fft,
             int64_t hop, float* out) override {
    in_.istft(s, dev("istft", re, "real"), dev("istft", im, "imag"), frames, n_fft, hop,
              dev("istft", out, "out"));
  }
  void axpby(Stream& s, const float* x, float* y, int64_t n, float alpha, float beta) override {
    in_.axpby(s, alpha != 0.0f ? dev("axpby", x, "x") : nullptr, dev("axpby", y, "y"), n, alpha,
              beta);
  }
  void add_row(Stream& s, const float* x, const float* row, float* y, int64_t rows,
               int64_t cols) override {
    in_.add_row(s, dev("add_row", x, "x"), dev("add_row", row, "row"), dev("add_row", y, "y"), rows,
                cols);
  }
  void gated_add(Stream& s, const float* x, const float* gate, float* y, int64_t rows,
                 int64_t cols) override {
    in_.gated_add(s, dev("gated_add", x, "x"), dev("gated_add", gate, "gate"),
                  dev("gated_add", y, "y"), rows, cols);
  }
  void copy_2d(Stream& s, const float* src, int64_t ld_src, float* dst, int64_t ld_dst,
               int64_t rows, int64_t cols) override {
    in_.copy_2d(s, dev("copy_2d", src, "src"), ld_src, dev("copy_2d", dst, "dst"), ld_dst, rows,
                cols);
  }
  void fill_2d(Stream& s, float* dst, int64_t ld_dst, int64_t rows, int64_t cols,
               float value) override {
    in_.fill_2d(s, dev("fill_2d", dst, "dst"), ld_dst, rows, cols, value);
  }
  void pad_rows(Stream& s, const float* x, int64_t rows, int64_t cols, float* y, int64_t left,
                int64_t right, PadMode mode) override {
    in_.pad_rows(s, dev("pad_rows", x, "x"), rows, cols, dev("pad_rows", y, "y"), left, right,
                 mode);
  }
  void gather_rows(Stream& s, const float* table, int64_t cols, const int32_t* ids, int64_t n,
                   float* dst) override {
    in_.gather_rows(s, dev("gather_rows", table, "table"), cols, ids, n,
                    dev("gather_rows", dst, "dst"));
  }
  void to_half(Stream& s, const float* x, uint16_t* y, int64_t n) override {
    in_.to_half(s, dev("to_half", x, "x"), dev("to_half", y, "y"), n);
  }
  void polar_spectrum(Stream& s, const float* x, int64_t ld_x, int64_t frames, int64_t bins,
                      float max_magnitude, float* real, float* imag) override {
    in_.polar_spectrum(s, dev("polar_spectrum", x, "x"), ld_x, frames, bins, max_magnitude,
                       dev("polar_spectrum", real, "real"), dev("polar_spectrum", imag, "imag"));
  }

 private:
  // Backend memory (or null) where the interface says so, in the kernels' view.
  template <typename T>
  T* dev(const char* op, T* p, const char* what) const {
    if (p != nullptr && !arena_.contains(p))
      fail("guarded backend: ", op, " was given host memory for its ", what);
    return arena_.kernel_view(p);
  }
  Activation act(const char* op, Activation a) const {
    a.alpha = dev(op, a.alpha, "Snake alpha");
    return a;
  }
  // Conv1dArgs or ConvTranspose1dArgs: the bias and the fused activation's alpha.
  template <typename ConvArgs>
  ConvArgs conv_args(const char* op, ConvArgs a) const {
    a.bias = dev(op, a.bias, "bias");
    a.pre = act(op, a.pre);
    return a;
  }
  std::vector<Segment> segments(const char* op, std::span<const Segment> segs) const {
    std::vector<Segment> t(segs.begin(), segs.end());
    for (Segment& g : t) {
      g.x = dev(op, g.x, "input");
      g.y = dev(op, g.y, "output");
    }
    return t;
  }
  Primitives& in_;
  GuardedArena& arena_;
};

class GuardedBackend final : public Backend {
 public:
  explicit GuardedBackend(std::unique_ptr<Backend> inner)
      : inner_(std::move(inner)), primitives_(inner_->primitives(), arena_) {}

  BackendInfo info() const override {
    BackendInfo i = inner_->info();
    i.name = "guarded(" + i.name + ")";
    return i;
  }
  bool supports(Op op, DType dtype) const override { return inner_->supports(op, dtype); }
  bool supports_weight_format(WeightFormat f) const override {
    return inner_->supports_weight_format(f);
  }

  void* allocate(size_t bytes, MemoryKind kind) override {
    if (kind != MemoryKind::Device) return inner_->allocate(bytes, kind);
    return arena_.allocate(bytes);
  }
  void deallocate(void* p, MemoryKind kind) override {
    if (kind != MemoryKind::Device) return inner_->deallocate(p, kind);
    arena_.deallocate(p);
  }
  void copy(Stream& s, void* dst, const void* src, size_t bytes) override {
    inner_->copy(s, arena_.kernel_view(dst), arena_.kernel_view(src), bytes);
  }
  std::shared_ptr<const void> upload_constant(const void* host, size_t bytes,
                                              std::shared_ptr<const void> /*owner*/) override {
    void* p = arena_.allocate(bytes);
    std::memcpy(arena_.kernel_view(p), host, bytes);
    return {p, [this](const void* q) { arena_.deallocate(const_cast<void*>(q)); }};
  }
  std::unique_ptr<Stream> create_stream() override { return inner_->create_stream(); }
  std::unique_ptr<Event> create_event() override { return inner_->create_event(); }
  std::unique_ptr<Graph> capture(Stream& stream,
                                 const std::function<void(Stream&)>& record) override {
    return inner_->capture(stream, record);
  }
  std::shared_ptr<const PreparedWeight> prepare_linear(const float* w, int64_t n, int64_t k,
                                                       WeightFormat f) override {
    return inner_->prepare_linear(w, n, k, f);
  }
  std::shared_ptr<const PreparedWeight> prepare_conv1d(const float* w, int64_t out_channels,
                                                       int64_t in_per_group, int64_t kernel,
                                                       int64_t groups, WeightFormat f) override {
    return inner_->prepare_conv1d(w, out_channels, in_per_group, kernel, groups, f);
  }
  std::shared_ptr<const PreparedWeight> prepare_conv_transpose1d(const float* w,
                                                                 int64_t in_channels,
                                                                 int64_t out_channels,
                                                                 int64_t kernel,
                                                                 WeightFormat f) override {
    return inner_->prepare_conv_transpose1d(w, in_channels, out_channels, kernel, f);
  }
  Primitives& primitives() override { return primitives_; }
  GuardedMemoryStats stats() const { return arena_.stats(); }

 private:
  std::unique_ptr<Backend> inner_;
  mutable GuardedArena arena_;
  GuardedPrimitives primitives_;
};

}  // namespace

std::unique_ptr<Backend> create_guarded_backend(std::unique_ptr<Backend> inner) {
  if (inner == nullptr) fail("guarded backend: no inner backend");
  return std::make_unique<GuardedBackend>(std::move(inner));
}

GuardedMemoryStats guarded_memory_stats(const Backend& backend) {
  const auto* g = dynamic_cast<const GuardedBackend*>(&backend);
  if (g == nullptr) fail("guarded_memory_stats: not a guarded backend");
  return g->stats();
}

}  // namespace cosy
