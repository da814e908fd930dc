#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// GatherV2 (float params), SelectV2 (float, int32), StridedSlice and StridedSliceGrad (float),
// on `device_type`.
void RegisterIndexingKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
