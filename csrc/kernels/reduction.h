#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Mean, Sum, Max and Min over any axes, float32, on `device_type`.
void RegisterReductionKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
