#include "model/weight_loader.h"

#include <cmath>

#include "core/error.h"
#include "model/param_schema.h"

namespace cosy {

std::vector<float> fold_weight_norm(const std::vector<float>& g, const std::vector<float>& v,
                                    int64_t dim0) {
  if (dim0 <= 0 || static_cast<int64_t>(g.size()) != dim0 ||
      v.size() % static_cast<size_t>(dim0) != 0) {
    fail("weight norm: g has ", g.size(), " values for ", dim0, " slices of ", v.size());
  }
  const size_t slice = v.size() / static_cast<size_t>(dim0);
  std::vector<float> w(v.size());
  for (size_t i = 0; i < static_cast<size_t>(dim0); ++i) {
    double ss = 0;
    for (size_t j = 0; j < slice; ++j)
      ss += static_cast<double>(v[i * slice + j]) * v[i * slice + j];
    const auto norm = static_cast<float>(std::sqrt(ss));
    for (size_t j = 0; j < slice; ++j) w[i * slice + j] = v[i * slice + j] * (g[i] / norm);
  }
  return w;
}

std::vector<float> WeightLoader::floats(const std::string& name) const {
  return sd_.at(name).to_float_vector();
}

ConstArray<float> WeightLoader::constants(const std::string& name) const {
  return ConstArray<float>::upload(backend_, floats(name));
}

std::vector<float> WeightLoader::weight(const std::string& base) const {
  const std::string name = base + ".weight";
  if (const Tensor* t = sd_.find(name)) return t->to_float_vector();
  for (const auto& form : weight_norm_forms(name)) {
    const Tensor* g = sd_.find(form.g);
    const Tensor* v = sd_.find(form.v);
    if (g == nullptr || v == nullptr) continue;
    return fold_weight_norm(g->to_float_vector(), v->to_float_vector(), v->dim(0));
  }
  fail(sd_.label, ": missing tensor '", name, "'");
}

std::shared_ptr<const PreparedWeight> WeightLoader::linear(const std::string& base, int64_t out,
                                                           int64_t in) const {
  const auto w = weight(base);
  if (static_cast<int64_t>(w.size()) != out * in)
    fail(sd_.label, ": '", base, ".weight' is not ", out, "x", in);
  return backend_.prepare_linear(w.data(), out, in, format_);
}

std::shared_ptr<const PreparedWeight> WeightLoader::stacked_linear(
    const std::vector<std::string>& bases, const std::vector<int64_t>& outs, int64_t in) const {
  if (bases.size() != outs.size() || bases.empty()) fail("stacked linear: bad arguments");
  std::vector<float> all;
  int64_t total = 0;
  for (size_t i = 0; i < bases.size(); ++i) {
    const auto w = weight(bases[i]);
    if (static_cast<int64_t>(w.size()) != outs[i] * in)
      fail(sd_.label, ": '", bases[i], ".weight' is not ", outs[i], "x", in);
    all.insert(all.end(), w.begin(), w.end());
    total += outs[i];
  }
  return backend_.prepare_linear(all.data(), total, in, format_);
}

std::shared_ptr<const PreparedWeight> WeightLoader::conv1d(const std::string& base, int64_t out,
                                                           int64_t in, int64_t kernel) const {
  const auto w = weight(base);
  if (static_cast<int64_t>(w.size()) != out * in * kernel) {
    fail(sd_.label, ": '", base, ".weight' is not [", out, ", ", in, ", ", kernel, "]");
  }
  return backend_.prepare_conv1d(w.data(), out, in, kernel, 1, format_);
}

std::shared_ptr<const PreparedWeight> WeightLoader::conv_transpose1d(const std::string& base,
                                                                     int64_t in, int64_t out,
                                                                     int64_t kernel) const {
  const auto w = weight(base);
  if (static_cast<int64_t>(w.size()) != out * in * kernel) {
    fail(sd_.label, ": '", base, ".weight' is not [", in, ", ", out, ", ", kernel, "]");
  }
  return backend_.prepare_conv_transpose1d(w.data(), in, out, kernel, format_);
}

}  // namespace cosy
