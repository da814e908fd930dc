#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// _QcpuScaleShift (ops/op_names.h), float32, on `device_type`.
void RegisterScaleShiftKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
