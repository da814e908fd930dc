#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Registers our private ops and every QCPU kernel (core side of TF_InitKernel).
void InitKernels(const char* device_type, TF_Status* status);

// True once InitKernels succeeded: the graph pass rewrites into our private
// ops only then, since without their kernels the rewritten graph cannot run.
bool KernelsRegistered();

}  // namespace int8flow::kernels
