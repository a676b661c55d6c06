#include "onnx/broadcast.h"

#include <algorithm>

#include "core/error.h"

namespace cosy::onnx {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail("shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Shape& in, const Shape& out) {
  Shape strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < in.size(); ++i) {
    const size_t ii = in.size() - 1 - i;
    const size_t oi = out.size() - 1 - i;
    strides[oi] = in[ii] == 1 ? 0 : stride;
    stride *= in[ii];
  }
  return strides;
}

}  // namespace cosy::onnx
