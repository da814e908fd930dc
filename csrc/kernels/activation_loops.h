#pragma once

#include <cstdint>
#include <string>

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// A unary op's element loop over [begin, end) of flat float32 arrays.
using UnaryLoop = void (*)(const float* x, float* y, int64_t begin, int64_t end);

// The loop of `op` (the loop-only unary ops below, and Rsqrt), or nullptr.
UnaryLoop FindUnaryLoop(const std::string& op);

// Runs `loop` over n elements, split over the OpenMP team when large.
void RunUnaryLoop(UnaryLoop loop, const float* x, float* y, int64_t n);

// Expm1, Erfc, Softplus, Softsign, Selu, Sign, Cos, Sin, Tan, Atan, Erf,
// Floor, Ceil, Round, Reciprocal, LogSoftmax, Select, Fill and
// the activations' gradients (ReluGrad, EluGrad, ..., SigmoidGrad, TanhGrad),
// float32 and through half_as_float.h bf16/float16, on `device_type`.
void RegisterActivationLoopKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
