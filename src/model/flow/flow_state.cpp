#include "model/flow/flow_state.h"

#include <algorithm>
#include <type_traits>

#include "core/error.h"

namespace cosy {

namespace {

// dst = head[skip:] ++ tail (`tail` released), all in backend memory.
template <typename T>
void concat_into(Exec& e, DeviceArray<T>& dst, const DeviceArray<T>& head, size_t skip,
                 DeviceArray<T>& tail) {
  skip = std::min(skip, head.size());
  const size_t kept = head.size() - skip;
  dst.resize(e.b, kept + tail.size());
  if (kept > 0) e.b.copy(e.s, dst.data(), head.data() + skip, kept * sizeof(T));
  if (!tail.empty()) e.b.copy(e.s, dst.data() + kept, tail.data(), tail.size() * sizeof(T));
  tail.release();
}

// Drops the first n values (into a fresh, exactly sized array: the state shrinks).
template <typename T>
void erase_front(Exec& e, DeviceArray<T>& v, size_t n) {
  n = std::min(n, v.size());
  if (n == 0) return;
  DeviceArray<T> rest;
  rest.assign(e.b, e.s, v.data() + n, v.size() - n);
  v = std::move(rest);
}

template <typename T>
void append_rows(Exec& e, DeviceArray<T>& dst, const float* src, size_t count) {
  const size_t at = dst.size();
  dst.resize_keep(e.b, e.s, at + count);
  if constexpr (std::is_same_v<T, uint16_t>) {
    e.k.to_half(e.s, src, dst.data() + at, static_cast<int64_t>(count));
  } else {
    e.b.copy(e.s, dst.data() + at, src, count * sizeof(float));
  }
}

template <typename T>
DeviceArray<T> copy_of(Exec& e, const DeviceArray<T>& a) {
  DeviceArray<T> c;
  c.assign(e.b, e.s, a.data(), a.size());
  return c;
}

}  // namespace

void KvHistory::append(Exec& e, const float* keys, const float* values, int64_t n, int64_t width) {
  const auto count = static_cast<size_t>(n * width);
  if (half) {
    append_rows(e, k16, keys, count);
    append_rows(e, v16, values, count);
  } else {
    append_rows(e, k, keys, count);
    append_rows(e, v, values, count);
  }
  rows += n;
}

void KvHistory::share(Exec& e) {
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
    concat_into(e, rows_now->k16, before.k16, skip, k16);
    concat_into(e, rows_now->v16, before.v16, skip, v16);
  } else {
    concat_into(e, rows_now->k, before.k, skip, k);
    concat_into(e, rows_now->v, before.v, skip, v);
  }
  rows_now->first = first;
  rows_now->rows = rows;
  shared = std::move(rows_now);
}

void KvHistory::truncate(Exec& e, int64_t keep, int64_t width) {
  keep = std::min(keep, rows);
  if (keep < first) fail("kv history: cannot keep rows before ", keep, ", dropped up to ", first);
  const int64_t own_begin = own_first();
  if (keep >= own_begin) {
    const auto own = static_cast<size_t>((keep - own_begin) * width);
    if (half) {
      k16.resize_keep(e.b, e.s, std::min(own, k16.size()));
      v16.resize_keep(e.b, e.s, std::min(own, v16.size()));
    } else {
      k.resize_keep(e.b, e.s, std::min(own, k.size()));
      v.resize_keep(e.b, e.s, std::min(own, v.size()));
    }
  } else {
    // Inside the shared rows (not reached by streaming, which only moves forward): the kept
    // rows become this stream's own.
    const auto from = static_cast<size_t>((first - shared->first) * width);
    const auto n = static_cast<size_t>((keep - first) * width);
    if (half) {
      k16.assign(e.b, e.s, shared->k16.data() + from, n);
      v16.assign(e.b, e.s, shared->v16.data() + from, n);
    } else {
      k.assign(e.b, e.s, shared->k.data() + from, n);
      v.assign(e.b, e.s, shared->v.data() + from, n);
    }
    shared.reset();
  }
  rows = keep;
}

void KvHistory::drop_before(Exec& e, int64_t row, int64_t width) {
  row = std::min(row, rows);
  if (row <= first) return;
  const int64_t own_begin = own_first();
  if (row > own_begin) {
    const auto n = static_cast<size_t>((row - own_begin) * width);
    if (half) {
      erase_front(e, k16, n);
      erase_front(e, v16, n);
    } else {
      erase_front(e, k, n);
      erase_front(e, v, n);
    }
  }
  first = row;
  if (shared != nullptr && shared->rows <= first) shared.reset();
}

KvHistory KvHistory::clone(Exec& e) const {
  KvHistory c;
  c.shared = shared;
  c.k = copy_of(e, k);
  c.v = copy_of(e, v);
  c.k16 = copy_of(e, k16);
  c.v16 = copy_of(e, v16);
  c.half = half;
  c.first = first;
  c.rows = rows;
  return c;
}

void FlowStreamState::share(Exec& e) {
  for (auto& h : encoder.kv) h.share(e);
  for (auto& est : estimator)
    for (auto& h : est.kv) h.share(e);
}

FlowStreamState FlowStreamState::clone(Exec& e) const {
  FlowStreamState c;
  c.half_kv = half_kv;
  c.encoder.committed = encoder.committed;
  for (const auto& h : encoder.kv) c.encoder.kv.push_back(h.clone(e));
  c.encoder.up_tail = copy_of(e, encoder.up_tail);
  for (const auto& est : estimator) c.estimator.push_back(est.clone(e));
  return c;
}

FlowEstimatorState FlowEstimatorState::clone(Exec& e) const {
  FlowEstimatorState s;
  s.half_kv = half_kv;
  s.committed = committed;
  for (const auto& h : kv) s.kv.push_back(h.clone(e));
  for (const auto& t : conv_tails) s.conv_tails.push_back(copy_of(e, t));
  return s;
}

}  // namespace cosy
