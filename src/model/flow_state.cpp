#include "model/flow_state.h"

#include <algorithm>

namespace cosy {

void KvHistory::share() {
  if (k.empty() && v.empty()) return;
  auto rows_now = std::make_shared<KvRows>();
  if (shared != nullptr) {
    rows_now->k = shared->k;
    rows_now->v = shared->v;
  }
  rows_now->k.insert(rows_now->k.end(), k.begin(), k.end());
  rows_now->v.insert(rows_now->v.end(), v.begin(), v.end());
  rows_now->k.shrink_to_fit();
  rows_now->v.shrink_to_fit();
  rows_now->rows = rows;
  shared = std::move(rows_now);
  k = {};
  v = {};
}

void KvHistory::truncate(int64_t keep, int64_t width) {
  keep = std::min(keep, rows);
  const int64_t in_shared = shared_rows();
  if (keep >= in_shared) {
    k.resize(static_cast<size_t>((keep - in_shared) * width));
    v.resize(static_cast<size_t>((keep - in_shared) * width));
  } else {
    // Below the shared rows (not reached by streaming, which only moves forward): the kept
    // rows become this stream's own.
    k.assign(shared->k.begin(), shared->k.begin() + keep * width);
    v.assign(shared->v.begin(), shared->v.begin() + keep * width);
    shared.reset();
  }
  rows = keep;
}

void FlowStreamState::share() {
  for (auto& h : encoder.kv) h.share();
  for (auto& e : estimator)
    for (auto& h : e.kv) h.share();
}

}  // namespace cosy
