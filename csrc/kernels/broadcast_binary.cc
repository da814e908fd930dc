#include "kernels/broadcast_binary.h"

#include <cmath>

#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

float Add(float x, float y) { return x + y; }
float Sub(float x, float y) { return x - y; }
float Mul(float x, float y) { return x * y; }
float Div(float x, float y) { return x / y; }
// Eigen's numext::maxi and mini for ties (x on +0 vs -0), NaN from either side.
float Max(float x, float y) { return x != x || y != y ? x + y : (x < y ? y : x); }
float Min(float x, float y) { return x != x || y != y ? x + y : (y < x ? y : x); }
float SquaredDifference(float x, float y) { return (x - y) * (x - y); }

// One run of the innermost dim, each operand read along it (step 1) or
// repeated (step 0): four loops the compiler vectorizes.
template <float (*Apply)(float, float)>
INT8FLOW_VECTOR_CLONES void Run(const float* a, bool a_steps, const float* b, bool b_steps,
                                float* out, int64_t n) {
  if (a_steps && b_steps)
    for (int64_t i = 0; i < n; ++i) out[i] = Apply(a[i], b[i]);
  else if (a_steps)
    for (int64_t i = 0; i < n; ++i) out[i] = Apply(a[i], *b);
  else if (b_steps)
    for (int64_t i = 0; i < n; ++i) out[i] = Apply(*a, b[i]);
  else
    for (int64_t i = 0; i < n; ++i) out[i] = Apply(*a, *b);
}

using RunFn = void (*)(const float*, bool, const float*, bool, float*, int64_t);

RunFn RunFor(BinaryLoopOp op) {
  switch (op) {
    case BinaryLoopOp::kAdd: return &Run<Add>;
    case BinaryLoopOp::kSub: return &Run<Sub>;
    case BinaryLoopOp::kMul: return &Run<Mul>;
    case BinaryLoopOp::kDiv: return &Run<Div>;
    case BinaryLoopOp::kMax: return &Run<Max>;
    case BinaryLoopOp::kMin: return &Run<Min>;
    case BinaryLoopOp::kSquaredDifference: return &Run<SquaredDifference>;
  }
  return &Run<Add>;
}

// Each operand's element strides over the output's dims (0 where it is
// broadcast), with adjacent dims that both read alike merged into one.
struct Walk {
  std::vector<int64_t> dims, a_strides, b_strides;
};

Walk Plan(const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape,
          const std::vector<int64_t>& out) {
  const std::vector<int64_t> sa = BroadcastStrides(a_shape, out),
                             sb = BroadcastStrides(b_shape, out);
  Walk walk;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;  // reads nothing new
    if (!walk.dims.empty() && walk.a_strides.back() == sa[d] * out[d] &&
        walk.b_strides.back() == sb[d] * out[d]) {
      walk.dims.back() *= out[d];
      walk.a_strides.back() = sa[d];
      walk.b_strides.back() = sb[d];
      continue;
    }
    walk.dims.push_back(out[d]);
    walk.a_strides.push_back(sa[d]);
    walk.b_strides.push_back(sb[d]);
  }
  if (walk.dims.empty()) walk = {{1}, {0}, {0}};
  return walk;
}

}  // namespace

void BroadcastBinaryLoop(BinaryLoopOp op, const float* a, const std::vector<int64_t>& a_shape,
                         const float* b, const std::vector<int64_t>& b_shape, float* out,
                         const std::vector<int64_t>& out_shape) {
  const Walk walk = Plan(a_shape, b_shape, out_shape);
  const RunFn run = RunFor(op);
  const size_t outer_rank = walk.dims.size() - 1;
  const int64_t inner = walk.dims.back();
  int64_t rows = 1;
  for (size_t d = 0; d < outer_rank; ++d) rows *= walk.dims[d];
  const bool a_steps = walk.a_strides.back() != 0, b_steps = walk.b_strides.back() != 0;
  ForRows(rows, inner, [&](int64_t first, int64_t last, int) {
    std::vector<int64_t> index(outer_rank, 0);
    int64_t a_at = 0, b_at = 0;
    for (int64_t d = static_cast<int64_t>(outer_rank) - 1, rest = first; d >= 0; --d) {
      index[d] = rest % walk.dims[d];
      rest /= walk.dims[d];
      a_at += index[d] * walk.a_strides[d];
      b_at += index[d] * walk.b_strides[d];
    }
    for (int64_t row = first; row < last; ++row) {
      run(a + a_at, a_steps, b + b_at, b_steps, out + row * inner, inner);
      for (int64_t d = static_cast<int64_t>(outer_rank) - 1; d >= 0; --d) {
        a_at += walk.a_strides[d], b_at += walk.b_strides[d];
        if (++index[d] < walk.dims[d]) break;
        a_at -= walk.a_strides[d] * walk.dims[d], b_at -= walk.b_strides[d] * walk.dims[d];
        index[d] = 0;
      }
    }
  });
}

}  // namespace int8flow::kernels
