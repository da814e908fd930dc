#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// BatchMatMulV2, BatchMatMul and two-operand Einsum, float32, on `device_type`.
void RegisterBatchMatMulKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
