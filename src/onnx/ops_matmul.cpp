// MatMul (NumPy semantics, batched and broadcast) and Gemm. float32 products run on the
// engine's GEMM: a constant right-hand side (a weight) is packed once when the model
// loads; a computed one (attention's Q·Kᵀ) is read in 16-column panels. Other types
// take a plain loop.
#include <cstring>

#include "kernels/gemm.h"
#include "kernels/packed_weight.h"
#include "onnx/broadcast.h"
#include "onnx/dispatch.h"
#include "onnx/op_registry.h"

namespace cosy::onnx {
namespace {

using cpu::kPanel;

// C[m, n] = A[m, k] · B[k, n] for row-major float matrices, B read in place when n is a
// multiple of 16, else through a zero-padded copy.
void matmul_f32(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::memset(c, 0, static_cast<size_t>(m * n) * sizeof(float));
    return;
  }
  const int64_t panels = (n + kPanel - 1) / kPanel;
  if (n % kPanel == 0) {
    cpu::gemm_f32_panels(a, k, m, k, b, n, kPanel, panels, c, n);
    return;
  }
  const int64_t np = panels * kPanel;
  std::vector<float> bp(static_cast<size_t>(k * np), 0.0f);
  for (int64_t r = 0; r < k; ++r)
    std::memcpy(&bp[r * np], b + r * n, static_cast<size_t>(n) * sizeof(float));
  std::vector<float> cp(static_cast<size_t>(m * np));
  cpu::gemm_f32_panels(a, k, m, k, bp.data(), np, kPanel, panels, cp.data(), np);
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(c + r * n, &cp[r * np], static_cast<size_t>(n) * sizeof(float));
}

template <typename T>
void matmul_plain(const T* a, const T* b, T* c, int64_t m, int64_t k, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc{0};
      for (int64_t p = 0; p < k; ++p) acc = static_cast<T>(acc + a[i * k + p] * b[p * n + j]);
      c[i * n + j] = acc;
    }
  }
}

class MatMulKernel final : public OpKernel {
 public:
  explicit MatMulKernel(std::shared_ptr<cpu::PackedWeight> packed) : packed_(std::move(packed)) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType a = input_type(in, 0, "MatMul");
    if (input_type(in, 1, "MatMul") != a) fail("MatMul: inputs have different types");
    if (!(a == DType::F32 || a == DType::F64 || a == DType::I32 || a == DType::I64 ||
          a == DType::U8 || a == DType::I8)) {
      unsupported_type("MatMul", a);
    }
    return {a};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& a0 = *in[0];
    const Tensor& b0 = *in[1];
    if (a0.rank() == 0 || b0.rank() == 0) fail("MatMul: scalar operands are not allowed");
    // 1-D operands are promoted (a: [1, k], b: [k, 1]) and the added axis removed after.
    Shape as = a0.shape();
    Shape bs = b0.shape();
    const bool a_vec = as.size() == 1;
    const bool b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const int64_t m = as[as.size() - 2];
    const int64_t k = as.back();
    const int64_t n = bs.back();
    if (bs[bs.size() - 2] != k) {
      fail("MatMul: shapes ", shape_str(a0.shape()), " and ", shape_str(b0.shape()),
           " do not multiply");
    }
    Shape batch_a(as.begin(), as.end() - 2);
    Shape batch_b(bs.begin(), bs.end() - 2);
    Shape batch = broadcast_shapes(batch_a, batch_b);
    Shape shape = batch;
    if (!a_vec) shape.push_back(m);
    if (!b_vec) shape.push_back(n);
    out[0] = new_tensor(a0.dtype(), shape);
    const int64_t nb = shape_numel(batch);
    if (nb == 0 || m == 0 || n == 0) return;

    // A weight shared by every batch: one GEMM over all rows of A.
    if (packed_ && b0.rank() == 2 && a0.dtype() == DType::F32) {
      const int64_t rows = a0.numel() / k;
      cpu::GemmProblem p;
      p.a = cpu::RowGeometry{a0.data<float>(), k, 1, 0, k};
      p.m = rows;
      p.c = out[0].mutable_data<float>();
      p.ldc = n;
      cpu::gemm(ctx.pool, std::span<const cpu::GemmProblem>(&p, 1), *packed_, cpu::GemmEpilogue{});
      return;
    }
    Shape sa = broadcast_strides(batch_a, batch);
    Shape sb = broadcast_strides(batch_b, batch);
    const int64_t rank = static_cast<int64_t>(batch.size());
    auto offsets = [&](int64_t i, int64_t& oa, int64_t& ob) {
      oa = 0;
      ob = 0;
      int64_t rem = i;
      for (int64_t d = rank - 1; d >= 0; --d) {
        const int64_t c = rem % batch[d];
        rem /= batch[d];
        oa += c * sa[d];
        ob += c * sb[d];
      }
    };
    dispatch_numeric(a0.dtype(), "MatMul", [&](auto tag) {
      using T = decltype(tag);
      const T* pa = a0.data<T>();
      const T* pb = b0.data<T>();
      T* pc = out[0].mutable_data<T>();
      ctx.pool.parallel_for(nb, [&](int64_t i) {
        int64_t oa = 0;
        int64_t ob = 0;
        offsets(i, oa, ob);
        const T* ai = pa + oa * m * k;
        const T* bi = pb + ob * k * n;
        T* ci = pc + i * m * n;
        if constexpr (std::is_same_v<T, float>) {
          matmul_f32(ai, bi, ci, m, k, n);
        } else {
          matmul_plain(ai, bi, ci, m, k, n);
        }
      });
    });
  }

 private:
  std::shared_ptr<cpu::PackedWeight> packed_;
};

std::shared_ptr<cpu::PackedWeight> pack_right(const Tensor& b) {
  const int64_t k = b.dim(0);
  const int64_t n = b.dim(1);
  const float* p = b.data<float>();
  return std::make_shared<cpu::PackedWeight>(
      n, k, WeightFormat::F32, [p, n](int64_t col, int64_t row) { return p[row * n + col]; });
}

std::unique_ptr<OpKernel> make_matmul(NodeBuild& b) {
  const Tensor* w = b.constant_input(1);
  std::shared_ptr<cpu::PackedWeight> packed;
  if (w != nullptr && w->dtype() == DType::F32 && w->rank() == 2 && w->numel() > 0)
    packed = pack_right(*w);
  return std::make_unique<MatMulKernel>(std::move(packed));
}

// Gemm: Y = alpha · A' · B' + beta · C, with A' and B' optionally transposed.
class GemmKernel final : public OpKernel {
 public:
  GemmKernel(float alpha, float beta, bool trans_a, bool trans_b)
      : alpha_(alpha), beta_(beta), trans_a_(trans_a), trans_b_(trans_b) {}

  std::vector<DType> infer_types(InputTypes in) const override {
    const DType a = input_type(in, 0, "Gemm");
    if (input_type(in, 1, "Gemm") != a) fail("Gemm: A and B have different types");
    if (!(a == DType::F32 || a == DType::F64 || a == DType::I32 || a == DType::I64))
      unsupported_type("Gemm", a);
    return {a};
  }

  void run(RunContext& ctx, std::span<const Tensor* const> in,
           std::span<Tensor> out) const override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (a.rank() != 2 || b.rank() != 2) fail("Gemm: A and B must be matrices");
    const int64_t m = trans_a_ ? a.dim(1) : a.dim(0);
    const int64_t k = trans_a_ ? a.dim(0) : a.dim(1);
    const int64_t kb = trans_b_ ? b.dim(1) : b.dim(0);
    const int64_t n = trans_b_ ? b.dim(0) : b.dim(1);
    if (k != kb)
      fail("Gemm: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
           " do not multiply");
    out[0] = new_tensor(a.dtype(), {m, n});
    const Tensor* c = in.size() > 2 ? in[2] : nullptr;
    Shape cs;
    if (c != nullptr) {
      Shape both = broadcast_shapes(c->shape(), {m, n});
      if (both != Shape{m, n})
        fail("Gemm: C ", shape_str(c->shape()), " does not broadcast to ", shape_str({m, n}));
      cs = broadcast_strides(c->shape(), {m, n});
    }
    dispatch_numeric(a.dtype(), "Gemm", [&](auto tag) {
      using T = decltype(tag);
      std::vector<T> am(static_cast<size_t>(m * k));
      std::vector<T> bm(static_cast<size_t>(k * n));
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t p = 0; p < k; ++p)
          am[i * k + p] = trans_a_ ? a.data<T>()[p * m + i] : a.data<T>()[i * k + p];
      }
      for (int64_t p = 0; p < k; ++p) {
        for (int64_t j = 0; j < n; ++j)
          bm[p * n + j] = trans_b_ ? b.data<T>()[j * k + p] : b.data<T>()[p * n + j];
      }
      T* y = out[0].mutable_data<T>();
      if constexpr (std::is_same_v<T, float>) {
        ctx.pool.parallel_range(m, 16, [&](int64_t r0, int64_t r1) {
          matmul_f32(am.data() + r0 * k, bm.data(), y + r0 * n, r1 - r0, k, n);
        });
      } else {
        matmul_plain(am.data(), bm.data(), y, m, k, n);
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          T v = static_cast<T>(static_cast<T>(alpha_) * y[i * n + j]);
          if (c != nullptr)
            v = static_cast<T>(v + static_cast<T>(beta_) * c->data<T>()[i * cs[0] + j * cs[1]]);
          y[i * n + j] = v;
        }
      }
    });
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
};

std::unique_ptr<OpKernel> make_gemm(NodeBuild& b) {
  return std::make_unique<GemmKernel>(
      b.attrs().get_float("alpha", 1.0f), b.attrs().get_float("beta", 1.0f),
      b.attrs().get_int("transA", 0) != 0, b.attrs().get_int("transB", 0) != 0);
}

constexpr OpSpec kOps[] = {
    {"MatMul", 13, make_matmul, 2, 2},
    {"Gemm", 13, make_gemm, 2, 3},
};

}  // namespace

std::span<const OpSpec> matmul_ops() { return kOps; }

}  // namespace cosy::onnx
