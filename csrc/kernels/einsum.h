#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Two-operand Einsum, float32, on `device_type`.
void RegisterEinsumKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
