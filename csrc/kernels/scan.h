#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Cumsum of float32, float64 and int64 along any axis (exclusive, reverse),
// on `device_type`.
void RegisterScanKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
