#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// MaxPool and AvgPool, float32 NHWC, on `device_type`.
void RegisterPoolingKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
