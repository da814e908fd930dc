// Broadcasting binary ops as our own loops, for the shapes oneDNN 3.2 runs
// on its reference binary: a per-row operand ([8,8,128,128] - [8,8,128,1],
// a softmax's gradient) or one broadcast along a middle dim (an attention
// mask [B,1,1,T] on [B,H,T,T]) took 25-70x TF's time there.
#pragma once

#include <cstdint>
#include <vector>

namespace int8flow::kernels {

enum class BinaryLoopOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kSquaredDifference };

// out = a <op> b, NumPy-broadcast to `out_shape`, in TF's arithmetic (one
// IEEE operation; Maximum and Minimum return NaN when either side is NaN).
// Over the OpenMP team when large.
void BroadcastBinaryLoop(BinaryLoopOp op, const float* a, const std::vector<int64_t>& a_shape,
                         const float* b, const std::vector<int64_t>& b_shape, float* out,
                         const std::vector<int64_t>& out_shape);

}  // namespace int8flow::kernels
