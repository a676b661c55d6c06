#include "model/precision_hazards.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cosy {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Largest singular value of the rows x cols matrix `w` (row-major), by power iteration.
double spectral_norm(const std::vector<double>& w, int64_t rows, int64_t cols) {
  std::vector<double> v(static_cast<size_t>(cols), 1.0 / std::sqrt(static_cast<double>(cols)));
  std::vector<double> u(static_cast<size_t>(rows));
  double sigma = 0;
  for (int it = 0; it < 50; ++it) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c)
        s += w[static_cast<size_t>(r * cols + c)] * v[static_cast<size_t>(c)];
      u[static_cast<size_t>(r)] = s;
    }
    double un = 0;
    for (double x : u) un += x * x;
    un = std::sqrt(un);
    if (un == 0) return 0;
    for (double& x : u) x /= un;
    std::fill(v.begin(), v.end(), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c)
        v[static_cast<size_t>(c)] +=
            w[static_cast<size_t>(r * cols + c)] * u[static_cast<size_t>(r)];
    }
    double vn = 0;
    for (double x : v) vn += x * x;
    vn = std::sqrt(vn);
    if (vn == 0) return 0;
    for (double& x : v) x /= vn;
    if (std::fabs(vn - sigma) <= 1e-9 * vn) return vn;
    sigma = vn;
  }
  return sigma;
}

}  // namespace

std::vector<PrecisionHazard> weight_hazards(const std::string& stage, const StateDict& weights) {
  PrecisionHazard range{stage, "weight_range", "", 0, 0, false, ""};
  PrecisionHazard under{stage, "weight_underflow", "", 0, 0, false, ""};
  double worst_fraction = 0;
  for (const std::string& name : weights.names()) {
    const Tensor& t = weights.at(name);
    if (!is_floating(t.dtype())) continue;
    const std::vector<float> v = t.to_float_vector();
    int64_t tiny = 0, nonzero = 0;
    for (float x : v) {
      const double a = std::fabs(static_cast<double>(x));
      if (a > range.worst) {
        range.worst = a;
        range.where = name;
      }
      if (a > kFp16Max || !std::isfinite(a)) ++range.count;
      if (a != 0) ++nonzero;
      if (a != 0 && a < kFp16MinSubnormal) ++tiny;
    }
    under.count += tiny;
    const double fraction =
        nonzero > 0 ? static_cast<double>(tiny) / static_cast<double>(nonzero) : 0;
    if (fraction > worst_fraction) {
      worst_fraction = fraction;
      under.where = name;
    }
  }
  range.flagged = range.count > 0;
  range.message = range.flagged
                      ? cat(range.count, " weights beyond fp16's range (largest |w| ", range.worst,
                            " in ", range.where, ")")
                      : cat("every weight within fp16's range (largest |w| ", range.worst, ")");
  under.worst = worst_fraction;
  under.flagged = worst_fraction > 1e-3;
  under.message = under.count == 0 ? std::string("no weight below fp16's smallest subnormal")
                                   : cat(under.count, " non-zero weights become 0 in fp16 (",
                                         100 * worst_fraction, " % of ", under.where, ")");
  return {range, under};
}

PrecisionHazard snake_alpha_hazard(const StateDict& hift) {
  PrecisionHazard h{"hift", "snake_alpha", "", 0, INFINITY, false, ""};
  int64_t seen = 0;
  for (const std::string& name : hift.names()) {
    if (!ends_with(name, ".alpha")) continue;
    for (float a : hift.at(name).to_float_vector()) {
      ++seen;
      const double m = std::fabs(static_cast<double>(a));
      if (m < h.worst) {
        h.worst = m;
        h.where = name;
      }
      if (m < 1.0 / kFp16Max) ++h.count;
    }
  }
  if (seen == 0) {
    h.worst = 0;
    h.message = "no Snake activations";
    return h;
  }
  h.flagged = h.count > 0;
  h.message =
      h.flagged
          ? cat(h.count, " of ", seen,
                " Snake alphas below 1/65504: 1/alpha overflows fp16 (smallest |alpha| ", h.worst,
                " in ", h.where, ")")
          : cat("every Snake alpha keeps 1/alpha within fp16 (smallest |alpha| ", h.worst, ")");
  return h;
}

PrecisionHazard attention_logit_hazard(const LlmConfig& config, const StateDict& llm) {
  const QwenConfig& q = config.qwen;
  const int64_t d = q.hidden_size, hd = q.head_dim();
  const int64_t heads = q.num_attention_heads, kv_heads = q.num_key_value_heads;
  PrecisionHazard h{"llm", "attention_logit_bound", "", 0, 0, false, ""};
  const double input_norm = std::sqrt(static_cast<double>(d));
  for (int64_t l = 0; l < q.num_hidden_layers; ++l) {
    const std::string p = "llm.model.model.layers." + std::to_string(l);
    const std::vector<float> g = llm.at(p + ".input_layernorm.weight").to_float_vector();
    // |W_h·diag(g)·x̂| + |b_h| for every head of a projection.
    const auto head_bounds = [&](const std::string& proj, int64_t n) {
      const std::vector<float> w = llm.at(p + ".self_attn." + proj + ".weight").to_float_vector();
      const Tensor* bias = llm.find(p + ".self_attn." + proj + ".bias");
      const std::vector<float> b = bias != nullptr ? bias->to_float_vector() : std::vector<float>{};
      std::vector<double> out;
      for (int64_t head = 0; head < n; ++head) {
        std::vector<double> m(static_cast<size_t>(hd * d));
        double bn = 0;
        for (int64_t r = 0; r < hd; ++r) {
          const int64_t row = head * hd + r;
          for (int64_t c = 0; c < d; ++c)
            m[static_cast<size_t>(r * d + c)] =
                double(w[static_cast<size_t>(row * d + c)]) * g[static_cast<size_t>(c)];
          if (!b.empty()) bn += double(b[static_cast<size_t>(row)]) * b[static_cast<size_t>(row)];
        }
        out.push_back(spectral_norm(m, hd, d) * input_norm + std::sqrt(bn));
      }
      return out;
    };
    const std::vector<double> qb = head_bounds("q_proj", heads),
                              kb = head_bounds("k_proj", kv_heads);
    double layer = 0;
    for (int64_t head = 0; head < heads; ++head) {
      const double bound = qb[static_cast<size_t>(head)] *
                           kb[static_cast<size_t>(head / (heads / kv_heads))] /
                           std::sqrt(static_cast<double>(hd));
      layer = std::max(layer, bound);
    }
    if (layer > kFp16Max) ++h.count;
    if (layer > h.worst) {
      h.worst = layer;
      h.where = "layer " + std::to_string(l);
    }
  }
  h.flagged = h.count > 0;
  h.message = cat("attention logits |q.k|/sqrt(d) are at most ", h.worst, " (", h.where, ")",
                  h.flagged ? cat(": ", h.count, " layers could overflow fp16") : std::string(""));
  return h;
}

}  // namespace cosy
