// _QcpuQuantize and _QcpuDequantize (op_definitions.h).
#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

void RegisterQuantizeKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
