#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// SpaceToBatchND and BatchToSpaceND (float32; int32 or int64 block shapes,
// paddings and crops, in host memory), on `device_type`.
void RegisterSpaceBatchKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
