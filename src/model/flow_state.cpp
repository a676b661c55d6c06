#include "model/flow_state.h"

#include <algorithm>

#include "core/tensor.h"

namespace cosy {

namespace {

template <typename T>
void concat_into(std::vector<T>& dst, const std::vector<T>& head, std::vector<T>& tail) {
  dst = head;
  dst.insert(dst.end(), tail.begin(), tail.end());
  dst.shrink_to_fit();
  std::vector<T>().swap(tail);  // `tail = {}` would keep its capacity
}

}  // namespace

void KvHistory::append(const float* keys, const float* values, int64_t n, int64_t width) {
  const auto count = static_cast<size_t>(n * width);
  if (half) {
    const size_t at = k16.size();
    k16.resize(at + count);
    v16.resize(at + count);
    floats_to_halves(keys, k16.data() + at, count);
    floats_to_halves(values, v16.data() + at, count);
  } else {
    k.insert(k.end(), keys, keys + count);
    v.insert(v.end(), values, values + count);
  }
  rows += n;
}

void KvHistory::share() {
  if (k.empty() && v.empty() && k16.empty() && v16.empty()) return;
  static const KvRows kNone;
  const KvRows& before = shared != nullptr ? *shared : kNone;
  auto rows_now = std::make_shared<KvRows>();
  if (half) {
    concat_into(rows_now->k16, before.k16, k16);
    concat_into(rows_now->v16, before.v16, v16);
  } else {
    concat_into(rows_now->k, before.k, k);
    concat_into(rows_now->v, before.v, v);
  }
  rows_now->rows = rows;
  shared = std::move(rows_now);
}

void KvHistory::truncate(int64_t keep, int64_t width) {
  keep = std::min(keep, rows);
  const int64_t in_shared = shared_rows();
  const auto own = static_cast<size_t>((keep - in_shared) * width);
  if (keep >= in_shared) {
    if (half) {
      k16.resize(own);
      v16.resize(own);
    } else {
      k.resize(own);
      v.resize(own);
    }
  } else {
    // Below the shared rows (not reached by streaming, which only moves forward): the kept
    // rows become this stream's own.
    const auto n = static_cast<ptrdiff_t>(keep * width);
    if (half) {
      k16.assign(shared->k16.begin(), shared->k16.begin() + n);
      v16.assign(shared->v16.begin(), shared->v16.begin() + n);
    } else {
      k.assign(shared->k.begin(), shared->k.begin() + n);
      v.assign(shared->v.begin(), shared->v.begin() + n);
    }
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
