#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Pad (constant zeros), float32, on `device_type`.
void RegisterPadKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
