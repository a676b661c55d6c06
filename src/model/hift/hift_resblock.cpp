#include "model/hift/hift_resblock.h"

#include "core/error.h"

namespace cosy {

HiftResBlock load_hift_resblock(const WeightLoader& wl, const std::string& p, int64_t ch, int64_t k,
                                const std::vector<int64_t>& dilations, bool causal) {
  HiftResBlock rb;
  for (size_t i = 0; i < dilations.size(); ++i) {
    const int64_t d = dilations[i];
    HiftResBlock::Layer l;
    // Centred: (k - 1) d / 2 on each side; causal: all of it on the left.
    const int64_t reach1 = (k - 1) * d, reach2 = k - 1;
    l.conv1 = load_conv(wl, p + ".convs1." + std::to_string(i), ch, ch, k,
                        causal ? reach1 : reach1 / 2, causal ? 0 : reach1 / 2, 1, d);
    l.conv2 = load_conv(wl, p + ".convs2." + std::to_string(i), ch, ch, k,
                        causal ? reach2 : reach2 / 2, causal ? 0 : reach2 / 2);
    l.alpha1 = wl.constants(p + ".activations1." + std::to_string(i) + ".alpha");
    l.alpha2 = wl.constants(p + ".activations2." + std::to_string(i) + ".alpha");
    if (static_cast<int64_t>(l.alpha1.size()) != ch || static_cast<int64_t>(l.alpha2.size()) != ch)
      fail(p, ": Snake alphas must have ", ch, " values");
    rb.layers.push_back(std::move(l));
  }
  return rb;
}

void HiftResBlock::run(Exec& e, const Batch& x, Batch& y, Batch& t) const {
  y.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) copy_act(e, x[i], y[i]);
  t.resize(x.size());
  for (const auto& l : layers) {
    l.conv1.run(e, y, t, {ActivationKind::Snake, 0, l.alpha1.data()}, false);
    l.conv2.run(e, t, y, {ActivationKind::Snake, 0, l.alpha2.data()}, true);
  }
}

}  // namespace cosy
