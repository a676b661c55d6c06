#include "model/flow_state.h"

#include <algorithm>

#include "core/error.h"
#include "core/tensor.h"

namespace cosy {

namespace {

// dst = head[skip:] ++ tail, tail released.
template <typename T>
void concat_into(std::vector<T>& dst, const std::vector<T>& head, size_t skip,
                 std::vector<T>& tail) {
  dst.assign(head.begin() + static_cast<ptrdiff_t>(std::min(skip, head.size())), head.end());
  dst.insert(dst.end(), tail.begin(), tail.end());
  dst.shrink_to_fit();
  std::vector<T>().swap(tail);  // `tail = {}` would keep its capacity
}

template <typename T>
void erase_front(std::vector<T>& v, size_t n) {
  v.erase(v.begin(), v.begin() + static_cast<ptrdiff_t>(std::min(n, v.size())));
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
  // Values per row, from the own rows (there are some).
  const size_t own_values = half ? k16.size() : k.size();
  const auto width = own_values / static_cast<size_t>(rows - own_first());
  // The shared rows before `first` are no longer held.
  const auto skip = static_cast<size_t>(std::max<int64_t>(0, first - before.first)) * width;
  auto rows_now = std::make_shared<KvRows>();
  if (half) {
    concat_into(rows_now->k16, before.k16, skip, k16);
    concat_into(rows_now->v16, before.v16, skip, v16);
  } else {
    concat_into(rows_now->k, before.k, skip, k);
    concat_into(rows_now->v, before.v, skip, v);
  }
  rows_now->first = first;
  rows_now->rows = rows;
  shared = std::move(rows_now);
}

void KvHistory::truncate(int64_t keep, int64_t width) {
  keep = std::min(keep, rows);
  if (keep < first) fail("kv history: cannot keep rows before ", keep, ", dropped up to ", first);
  const int64_t own_begin = own_first();
  if (keep >= own_begin) {
    const auto own = static_cast<size_t>((keep - own_begin) * width);
    if (half) {
      k16.resize(own);
      v16.resize(own);
    } else {
      k.resize(own);
      v.resize(own);
    }
  } else {
    // Inside the shared rows (not reached by streaming, which only moves forward): the kept
    // rows become this stream's own.
    const auto from = static_cast<ptrdiff_t>((first - shared->first) * width);
    const auto to = static_cast<ptrdiff_t>((keep - shared->first) * width);
    if (half) {
      k16.assign(shared->k16.begin() + from, shared->k16.begin() + to);
      v16.assign(shared->v16.begin() + from, shared->v16.begin() + to);
    } else {
      k.assign(shared->k.begin() + from, shared->k.begin() + to);
      v.assign(shared->v.begin() + from, shared->v.begin() + to);
    }
    shared.reset();
  }
  rows = keep;
}

void KvHistory::drop_before(int64_t row, int64_t width) {
  row = std::min(row, rows);
  if (row <= first) return;
  const int64_t own_begin = own_first();
  if (row > own_begin) {
    const auto n = static_cast<size_t>((row - own_begin) * width);
    if (half) {
      erase_front(k16, n);
      erase_front(v16, n);
    } else {
      erase_front(k, n);
      erase_front(v, n);
    }
  }
  first = row;
  if (shared != nullptr && shared->rows <= first) shared.reset();
}

void FlowStreamState::share() {
  for (auto& h : encoder.kv) h.share();
  for (auto& e : estimator)
    for (auto& h : e.kv) h.share();
}

}  // namespace cosy
