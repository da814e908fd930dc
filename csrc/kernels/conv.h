#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Conv2D, DepthwiseConv2dNative (NHWC), Conv3D (NDHWC) and their fused forms,
// float32, on `device_type`.
void RegisterConvKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
