#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// _QcpuLayerNorm, float32, on `device_type`.
void RegisterLayerNormKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
