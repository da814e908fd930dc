// TF's NaN rules where oneDNN's primitives differ. TF's standalone Relu, Relu6,
// Maximum and Minimum and its Max and Min reductions return NaN where an input
// is NaN; oneDNN computes them with vector max/min instructions, which return
// the other operand. These helpers keep TF's answer at the cost of one scan
// of the inputs (the kernels repair the rare outputs that need it). Where our
// own loops run instead of oneDNN, they keep the rule themselves: Maximum and
// Minimum (broadcast_binary.h), and the Max and Min reductions' loops.
// TF's own fused kernels (_FusedMatMul, _FusedConv2D with Relu) drop NaN as
// oneDNN does, so fused post-ops are left as they are.
#pragma once

#include <cstdint>
#include <vector>

namespace int8flow::kernels {

// Whether any of x[0, n) is NaN.
bool AnyNaN(const float* x, int64_t n);

// y = min(max(x, lo), hi), element-wise, NaN staying NaN (TF's Relu, Relu6).
// `y` may be `x`.
void ClampKeepingNaN(const float* x, float* y, int64_t n, float lo, float hi);

// For an element-wise unary op of `x` that made `y`: y = x wherever x is NaN
// (Exp, where oneDNN's exp gives +Inf).
void PropagateNaN(const float* x, float* y, int64_t n);

// For a reduction of `x` (shape `in`) to `out` (shape `kept`: `in` with the
// reduced axes as 1): out = NaN wherever its window holds a NaN.
void PropagateReducedNaN(const float* x, const std::vector<int64_t>& in, float* out,
                         const std::vector<int64_t>& kept);

}  // namespace int8flow::kernels
