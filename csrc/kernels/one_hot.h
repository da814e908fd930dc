#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// OneHot to float32 from int32, int64 or uint8 indices, on `device_type`.
void RegisterOneHotKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
