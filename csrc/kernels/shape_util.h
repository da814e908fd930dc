// Index math on shapes that element-moving kernels share: NumPy broadcasting
// and a walk over every index of a shape.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"  // NumElements, ShapeString
#include "kernels/vector_loops.h"

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
            [&] { return "Incompatible shapes: " + ShapeString(a) + " vs. " + ShapeString(b); });
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

// z[i] = op(x[i], y[i]) over n elements, an operand that does not step read
// at [0]: one loop per case, in vector clones (a mask's `x > 0` on 2^20
// floats in baseline SSE2 code took 1.7x TF's time, with its Cast).
template <class In, class Out, class Op>
INT8FLOW_VECTOR_CLONES void FlatBinary(const In* x, bool x_steps, const In* y, bool y_steps, Out* z,
                                       int64_t n, Op op) {
  if (x_steps && y_steps) {
    for (int64_t i = 0; i < n; ++i) z[i] = op(x[i], y[i]);
  } else if (x_steps) {
    const In y0 = y[0];
    for (int64_t i = 0; i < n; ++i) z[i] = op(x[i], y0);
  } else if (y_steps) {
    const In x0 = x[0];
    for (int64_t i = 0; i < n; ++i) z[i] = op(x0, y[i]);
  } else {
    std::fill(z, z + n, op(x[0], y[0]));
  }
}

// Output 0 = op(input 0, input 1) element by element, NumPy-broadcast, of
// type `out_type` (C++ `Out`). Operands of the output's size or of one
// element take FlatBinary, over threads when large (`op` must not throw);
// others walk every index, for the few-element tensors of loop conditions.
template <class In, class Out, class Op>
void BroadcastBinary(KernelContext& ctx, TF_DataType out_type, Op op) {
  OwnedTensor a = ctx.input(0), b = ctx.input(1);
  const auto a_shape = Shape(a.get()), b_shape = Shape(b.get());
  const auto out_shape = BroadcastShape(a_shape, b_shape);
  // In a's buffer when TF allows it (the same shape and type, no other reader).
  OwnedTensor out = a_shape == out_shape ? ctx.forward_input_or_allocate_output(out_shape, 0, a)
                                         : ctx.allocate_output(0, out_shape, out_type);
  const In* x = Data<In>(a.get());
  const In* y = Data<In>(b.get());
  Out* z = Data<Out>(out.get());
  const int64_t n = NumElements(out_shape), na = NumElements(a_shape), nb = NumElements(b_shape);
  if ((na == n || na == 1) && (nb == n || nb == 1)) {
    return ForChunks(n, [&](int64_t begin, int64_t end, int) {
      FlatBinary(na == n ? x + begin : x, na == n, nb == n ? y + begin : y, nb == n, z + begin,
                 end - begin, op);
    });
  }
  int64_t i = 0;
  ForEachIndex(out_shape,
               {BroadcastStrides(a_shape, out_shape), BroadcastStrides(b_shape, out_shape)},
               [&](const std::vector<int64_t>& at) { z[i++] = op(x[at[0]], y[at[1]]); });
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
