#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// MatMul and _QcpuFusedMatMul, float32, on `device_type`.
void RegisterMatMulKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
