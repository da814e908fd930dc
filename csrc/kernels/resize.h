#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// ResizeBilinear and ResizeNearestNeighbor, float32 NHWC, on `device_type`.
void RegisterResizeKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
