#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// Conv2DBackpropInput and Conv2DBackpropFilter, float32 NHWC, on `device_type`.
void RegisterConvBackpropKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
