#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// FusedBatchNorm, FusedBatchNormV2 and FusedBatchNormV3 (float32, inference
// and training), on `device_type`.
void RegisterBatchNormKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
