#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Exp, Expm1, Erfc, Softplus, Softsign, Selu, Sign, Cos, Sin, Tan, Atan,
// Erf, Floor, Ceil, Round, Reciprocal, LogSoftmax, Select, Fill and
// the activations' gradients (ReluGrad, EluGrad, ..., SigmoidGrad, TanhGrad),
// float32 and through half_as_float.h bf16/float16, on `device_type`.
void RegisterActivationLoopKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
