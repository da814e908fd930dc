#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Float32 kernels on `device_type` for the activations (activations.h),
// broadcasting binary ops, BiasAdd and Softmax.
void RegisterElementwiseKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
