#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// ArgMax and ArgMin of float32 over one axis, int64 or int32 results, on `device_type`.
void RegisterArgMaxKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
