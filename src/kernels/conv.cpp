#include "kernels/conv.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/gemm.h"
#include "kernels/scratch.h"

namespace cosy::cpu {

size_t ConvWeight::bytes() const {
  size_t total = 0;
  for (const auto& g : groups_) total += g->bytes();
  return total;
}

std::shared_ptr<ConvWeight> pack_conv1d(const float* w, int64_t out_channels, int64_t in_per_group,
                                        int64_t kernel, int64_t groups, WeightFormat f) {
  if (groups <= 0 || out_channels % groups != 0) {
    fail("conv1d: ", out_channels, " output channels do not split into ", groups, " groups");
  }
  const int64_t out_per_group = out_channels / groups;
  std::vector<std::shared_ptr<PackedWeight>> packed;
  for (int64_t g = 0; g < groups; ++g) {
    // B[(tap * in + c), o] = W[g*opg + o, c, tap]: tap-major K matches RowGeometry.
    packed.push_back(std::make_shared<PackedWeight>(
        out_per_group, kernel * in_per_group, f, [&](int64_t o, int64_t kk) {
          const int64_t tap = kk / in_per_group, c = kk % in_per_group;
          return w[((g * out_per_group + o) * in_per_group + c) * kernel + tap];
        }));
  }
  return std::make_shared<ConvWeight>(std::move(packed), out_channels);
}

std::shared_ptr<PackedWeight> pack_conv_transpose1d(const float* w, int64_t in_channels,
                                                    int64_t out_channels, int64_t kernel,
                                                    WeightFormat f) {
  // Z[t, tap * C_out + o] = sum_c x[t, c] W[c, o, tap].
  return std::make_shared<PackedWeight>(
      kernel * out_channels, in_channels, f, [&](int64_t n, int64_t c) {
        const int64_t tap = n / out_channels, o = n % out_channels;
        return w[(c * out_channels + o) * kernel + tap];
      });
}

namespace {

int64_t ld_or(int64_t ld, int64_t channels) { return ld > 0 ? ld : channels; }

void check_segments(std::span<const Segment> segs, const char* what) {
  for (const Segment& s : segs) {
    if (s.t_in < 0 || (s.t_in > 0 && (s.x == nullptr || s.y == nullptr))) {
      fail(what, ": bad segment (", s.t_in, " steps)");
    }
  }
}

}  // namespace

void conv1d(ThreadPool& pool, std::span<const Segment> segs, const Conv1dArgs& a) {
  check_segments(segs, "conv1d");
  const auto* weight = dynamic_cast<const ConvWeight*>(a.weight);
  if (weight == nullptr) fail("conv1d: weight was not prepared by prepare_conv1d");
  const auto groups = static_cast<int64_t>(weight->num_groups());
  if (a.groups != groups || a.in_channels % groups != 0 ||
      weight->in_features() != a.kernel * (a.in_channels / groups) ||
      weight->out_features() != a.out_channels) {
    fail("conv1d: arguments (", a.in_channels, "→", a.out_channels, ", kernel ", a.kernel,
         ", groups ", a.groups, ") do not match the prepared weight");
  }
  if (a.stride <= 0 || a.dilation <= 0) fail("conv1d: stride and dilation must be positive");
  const int64_t cin = a.in_channels, in_per_group = cin / groups;
  const int64_t out_per_group = a.out_channels / groups;

  ScratchScope scope;
  std::vector<GemmProblem> problems;
  std::vector<float*> padded(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = segs[i];
    const int64_t t_out = a.out_length(s.t_in);
    if (s.t_in == 0 || t_out <= 0) continue;
    const int64_t rows = a.pad_left + s.t_in + a.pad_right;
    float* p = scope.arena().alloc<float>(static_cast<size_t>(rows * cin)).data();
    padded[i] = p;
    std::memset(p, 0, static_cast<size_t>(a.pad_left * cin) * sizeof(float));
    std::memset(p + (a.pad_left + s.t_in) * cin, 0,
                static_cast<size_t>(a.pad_right * cin) * sizeof(float));
    const int64_t ldx = ld_or(s.ld_x, cin);
    pool.parallel_range(s.t_in, 64, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        activate_row(a.pre, s.x + t * ldx, p + (a.pad_left + t) * cin, cin);
    });
  }
  for (int64_t g = 0; g < groups; ++g) {
    problems.clear();
    for (size_t i = 0; i < segs.size(); ++i) {
      if (padded[i] == nullptr) continue;
      const Segment& s = segs[i];
      GemmProblem pr;
      pr.a = {padded[i] + g * in_per_group, a.stride * cin, a.kernel, a.dilation * cin,
              in_per_group};
      pr.m = a.out_length(s.t_in);
      pr.c = s.y + g * out_per_group;
      pr.ldc = ld_or(s.ld_y, a.out_channels);
      problems.push_back(pr);
    }
    gemm(pool, problems, weight->group(static_cast<size_t>(g)),
         {a.bias != nullptr ? a.bias + g * out_per_group : nullptr, a.accumulate});
  }
}

void conv_transpose1d(ThreadPool& pool, std::span<const Segment> segs,
                      const ConvTranspose1dArgs& a) {
  check_segments(segs, "conv_transpose1d");
  const auto* weight = dynamic_cast<const PackedWeight*>(a.weight);
  if (weight == nullptr || weight->in_features() != a.in_channels ||
      weight->out_features() != a.kernel * a.out_channels) {
    fail("conv_transpose1d: arguments do not match the prepared weight");
  }
  if (a.stride <= 0 || a.padding < 0) fail("conv_transpose1d: bad stride or padding");
  const int64_t cin = a.in_channels, cout = a.out_channels, kernel = a.kernel;
  const int64_t zcols = kernel * cout;

  ScratchScope scope;
  std::vector<GemmProblem> problems;
  std::vector<float*> zs(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = segs[i];
    if (s.t_in == 0) continue;
    const int64_t ldx = ld_or(s.ld_x, cin);
    float* xa = scope.arena().alloc<float>(static_cast<size_t>(s.t_in * cin)).data();
    pool.parallel_range(s.t_in, 64, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) activate_row(a.pre, s.x + t * ldx, xa + t * cin, cin);
    });
    zs[i] = scope.arena().alloc<float>(static_cast<size_t>(s.t_in * zcols)).data();
    GemmProblem pr;
    pr.a = {xa, cin, 1, 0, cin};
    pr.m = s.t_in;
    pr.c = zs[i];
    pr.ldc = zcols;
    problems.push_back(pr);
  }
  gemm(pool, problems, *weight, {});
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = segs[i];
    if (zs[i] == nullptr) continue;
    const int64_t t_out = a.out_length(s.t_in);
    const int64_t ldy = ld_or(s.ld_y, cout);
    const float* z = zs[i];
    pool.parallel_range(t_out, 32, [&](int64_t b, int64_t e) {
      for (int64_t to = b; to < e; ++to) {
        float* y = s.y + to * ldy;
        if (a.bias != nullptr) {
          std::memcpy(y, a.bias, static_cast<size_t>(cout) * sizeof(float));
        } else {
          std::memset(y, 0, static_cast<size_t>(cout) * sizeof(float));
        }
        // Output step `to` receives input step t through tap k when t*stride + k = to + padding.
        const int64_t shifted = to + a.padding;
        for (int64_t k = shifted % a.stride; k < kernel; k += a.stride) {
          const int64_t t = (shifted - k) / a.stride;
          if (t < 0 || t >= s.t_in) continue;
          const float* src = z + t * zcols + k * cout;
          for (int64_t o = 0; o < cout; ++o) y[o] += src[o];
        }
      }
    });
  }
}

}  // namespace cosy::cpu
