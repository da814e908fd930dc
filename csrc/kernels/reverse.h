#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// ReverseV2, float32 and bool (bf16/float16 through half_as_float.h), on `device_type`.
void RegisterReverseKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
