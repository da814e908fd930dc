#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Registers our private ops and every QCPU kernel (core side of TF_InitKernel);
// KernelsRegistered (registered_kernels.h) says whether it succeeded.
void InitKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
