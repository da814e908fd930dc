// Index math on shapes that element-moving kernels share: NumPy broadcasting
// and a walk over every index of a shape.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"  // NumElements, ShapeString

namespace int8flow::kernels {

// NumPy broadcasting of two shapes; TF's message when they do not broadcast.
inline std::vector<int64_t> BroadcastShape(const std::vector<int64_t>& a,
                                           const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    Require(da == db || da == 1 || db == 1,
            "Incompatible shapes: " + ShapeString(a) + " vs. " + ShapeString(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Calls `visit(offsets)` for every index of `shape`, in row-major order, with
// each operand's element offset, given its per-dim strides (0: broadcast).
template <class Visit>
inline void ForEachIndex(const std::vector<int64_t>& shape,
                         const std::vector<std::vector<int64_t>>& strides, Visit visit) {
  if (NumElements(shape) == 0) return;
  const size_t rank = shape.size(), operands = strides.size();
  std::vector<int64_t> index(rank, 0), offsets(operands, 0);
  while (true) {
    visit(offsets);
    int d = static_cast<int>(rank) - 1;
    for (; d >= 0; --d) {
      for (size_t o = 0; o < operands; ++o) offsets[o] += strides[o][d];
      if (++index[d] < shape[d]) break;
      for (size_t o = 0; o < operands; ++o) offsets[o] -= strides[o][d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

// Row-major strides of `shape` read as `out` (right-aligned; size-1 dims
// and missing leading dims broadcast with stride 0).
inline std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& shape,
                                             const std::vector<int64_t>& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i, o = out.size() - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

// `shape` read as [outer, shape[axis], inner]: the element counts before and
// after dim `axis`.
struct AroundAxis {
  int64_t outer = 1, inner = 1;
};
inline AroundAxis AroundAxisOf(const std::vector<int64_t>& shape, int64_t axis) {
  AroundAxis around;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
    if (d != axis) (d < axis ? around.outer : around.inner) *= shape[d];
  return around;
}

}  // namespace int8flow::kernels
